-- create-topic.lua: create a topic and count its partitions in one step (CreateTopics,
-- auto-creation on Metadata), so that `--max-partitions` holds however many brokers create
-- topics at once.
--
-- KEYS[1] the name index (name -> topic id)   KEYS[2] the new topic's hash
-- KEYS[3] the cluster's partition count
-- ARGV[1] name   ARGV[2] topic id   ARGV[3] partitions   ARGV[4] most partitions in the cluster
-- ARGV[5] '1' to check only (validateOnly: nothing is written)
-- ARGV[6..] field, value pairs of the topic's hash
--
-- Returns {status, count}, count being the cluster's partitions before this call:
--   'exists'     the name is taken (count 0)
--   'uncounted'  KEYS[3] is missing (count 0): the caller runs count-partitions.lua and calls again
--   'limit'      the topic would take the cluster over ARGV[4]; nothing written
--   'ok'         created (or, checking only, would be)
-- The hash and the name are written together, so a name that resolves always has its details.
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  return {'exists', 0}
end
local count = redis.call('GET', KEYS[3])
if not count then
  return {'uncounted', 0}
end
count = tonumber(count)
local partitions = tonumber(ARGV[3])
if count + partitions > tonumber(ARGV[4]) then
  return {'limit', count}
end
if ARGV[5] == '1' then
  return {'ok', count}
end
local fields = {}
for i = 6, #ARGV do
  fields[#fields + 1] = ARGV[i]
end
redis.call('HSET', KEYS[2], unpack(fields))
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCRBY', KEYS[3], partitions)
return {'ok', count}
