-- lease-release.lua: give a lease up (graceful shutdown) only if it is still ours.
--
-- KEYS[1] lease   ARGV[1] expected value "<nodeId>:<token>"
-- Returns 1 when released, 0 when it was not ours any more.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
