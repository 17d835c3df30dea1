-- group-write.lua: write what one transition changed in a consumer group's state, while the
-- writer holds the group's lease (src/groups/group-store.ts describes the layout).
--
-- KEYS[1] lease   KEYS[2] group record (string)   KEYS[3] members (hash)
-- ARGV[1] expected lease value "<nodeId>:<token>"
-- ARGV[2] '1' to replace the members hash as a whole (deleted first), '0' to change it
-- ARGV[3] the new group record, or '' to leave it as it is
-- ARGV[4] number of fields to set N, then N field/value pairs, then the fields to delete.
-- Returns 1 when written, 0 when the lease is not ours (the caller has lost ownership).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[3])
end
if ARGV[3] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3])
end
-- One command per field: a whole group can be thousands of fields, more than unpack() takes.
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  redis.call('HSET', KEYS[3], ARGV[i], ARGV[i + 1])
  i = i + 2
end
for j = i, #ARGV do
  redis.call('HDEL', KEYS[3], ARGV[j])
end
return 1
