-- count-partitions.lua: start the cluster's partition count on a cluster that has none yet
-- (created before `--max-partitions` existed).
--
-- KEYS[1] the name index (name -> topic id)   KEYS[2] the cluster's partition count
-- ARGV[1] the prefix of topic hash keys (a topic's hash is the prefix plus its id)
--
-- Sets KEYS[2] to the sum of the partitions of every named topic when it is missing, and
-- returns the count. The topic hashes are read by building their keys here rather than
-- passing them in KEYS: a list read before the call could miss a topic created meanwhile, and
-- every one of these keys has the `{strata}` hash tag, so they share one Redis Cluster slot.
local current = redis.call('GET', KEYS[2])
if current then
  return tonumber(current)
end
local total = 0
local index = redis.call('HGETALL', KEYS[1])
for i = 1, #index, 2 do
  local partitions = redis.call('HGET', ARGV[1] .. index[i + 1], 'partitions')
  if partitions then
    total = total + tonumber(partitions)
  end
end
redis.call('SET', KEYS[2], string.format('%d', total))
return total
