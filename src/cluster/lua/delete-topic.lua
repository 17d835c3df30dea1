-- delete-topic.lua: remove a topic's metadata and its partitions from the cluster's count
-- (DeleteTopics).
--
-- KEYS[1] the name index (name -> topic id)   KEYS[2] the topic's hash
-- KEYS[3] the cluster's partition count
-- ARGV[1] name   ARGV[2] topic id
-- The name entry goes only while it still names this topic id: a topic re-created under the
-- same name meanwhile keeps its entry. The count drops by the partitions the hash holds now
-- (a concurrent increase included), and only when the name entry went, so a topic is
-- subtracted once; a missing count stays missing (count-partitions.lua starts it from the
-- topics left). Returns 1 when the name entry was removed, else 0.
local partitions = tonumber(redis.call('HGET', KEYS[2], 'partitions') or '0')
redis.call('DEL', KEYS[2])
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  if redis.call('EXISTS', KEYS[3]) == 1 then
    redis.call('DECRBY', KEYS[3], partitions)
  end
  return 1
end
return 0
