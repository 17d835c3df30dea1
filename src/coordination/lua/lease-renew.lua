-- lease-renew.lua: extend a lease only if it is still exactly ours.
--
-- KEYS[1] lease   ARGV[1] expected value "<nodeId>:<token>"   ARGV[2] ttl in ms
-- Returns 1 when renewed, 0 when the lease expired or another node took it (ownership lost).
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
