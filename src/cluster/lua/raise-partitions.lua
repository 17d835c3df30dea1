-- raise-partitions.lua: raise a topic's partition count, never lower it, and count the new
-- partitions in the cluster's total in the same step (CreatePartitions).
--
-- KEYS[1] the topic's hash   KEYS[2] the cluster's partition count
-- ARGV[1] the new count   ARGV[2] most partitions in the cluster
-- ARGV[3] '1' to check only (validateOnly: nothing is written)
--
-- Returns {status, before, count}: `before` is the topic's count found, `count` the cluster's
-- partitions before this call.
--   'gone'       the topic is deleted (nothing written)
--   'not-higher' ARGV[1] does not raise `before`: a concurrent increase got there first, and
--                two increases cannot undo each other (nothing written)
--   'uncounted'  KEYS[2] is missing: the caller runs count-partitions.lua and calls again
--   'limit'      the new partitions would take the cluster over ARGV[2] (nothing written)
--   'ok'         raised (or, checking only, would be)
local current = redis.call('HGET', KEYS[1], 'partitions')
if not current then
  return {'gone', 0, 0}
end
current = tonumber(current)
local wanted = tonumber(ARGV[1])
if wanted <= current then
  return {'not-higher', current, 0}
end
local count = redis.call('GET', KEYS[2])
if not count then
  return {'uncounted', current, 0}
end
count = tonumber(count)
if count + wanted - current > tonumber(ARGV[2]) then
  return {'limit', current, count}
end
if ARGV[3] == '1' then
  return {'ok', current, count}
end
redis.call('HSET', KEYS[1], 'partitions', ARGV[1])
redis.call('INCRBY', KEYS[2], wanted - current)
return {'ok', current, count}
