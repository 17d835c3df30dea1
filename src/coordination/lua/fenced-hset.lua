-- fenced-hset.lua: set and delete hash fields (committed offsets) while holding the lease.
--
-- KEYS[1] lease   KEYS[2] hash
-- ARGV[1] expected lease value "<nodeId>:<token>"   ARGV[2] number of fields to set N,
-- then N field/value pairs, then the fields to delete.
-- Returns 1 when applied, 0 when the lease is not ours.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
local n = tonumber(ARGV[2])
local i = 3
if n > 0 then
  local args = {}
  for j = 1, 2 * n do
    args[j] = ARGV[i]
    i = i + 1
  end
  redis.call('HSET', KEYS[2], unpack(args))
end
if i <= #ARGV then
  local dels = {}
  for j = i, #ARGV do
    dels[#dels + 1] = ARGV[j]
  end
  redis.call('HDEL', KEYS[2], unpack(dels))
end
return 1
