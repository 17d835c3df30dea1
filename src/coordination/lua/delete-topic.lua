-- delete-topic.lua: remove a topic's metadata (DeleteTopics).
--
-- KEYS[1] the name index (name -> topic id)   KEYS[2] the topic's hash
-- ARGV[1] name   ARGV[2] topic id
-- The name entry goes only while it still names this topic id: a topic re-created under the
-- same name meanwhile keeps its entry. Returns 1 when the name entry was removed, else 0.
redis.call('DEL', KEYS[2])
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
