-- raise-partitions.lua: raise a topic's partition count, never lower it (CreatePartitions).
--
-- KEYS[1] the topic's hash   ARGV[1] the new count
-- Returns the count found before: 0 when the topic is gone (nothing written); the count is
-- written only when ARGV[1] is higher, so two concurrent increases cannot undo each other.
local current = redis.call('HGET', KEYS[1], 'partitions')
if not current then
  return 0
end
current = tonumber(current)
if tonumber(ARGV[1]) > current then
  redis.call('HSET', KEYS[1], 'partitions', ARGV[1])
end
return current
