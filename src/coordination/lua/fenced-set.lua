-- fenced-set.lua: write a coordinator's state only while it holds the lease.
--
-- KEYS[1] lease   KEYS[2] string key to set (or to delete when ARGV[2] is absent)
-- ARGV[1] expected lease value "<nodeId>:<token>"   ARGV[2] value
-- Returns 1 when written, 0 when the lease is not ours (the caller has lost ownership).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] then
  redis.call('SET', KEYS[2], ARGV[2])
else
  redis.call('DEL', KEYS[2])
end
return 1
