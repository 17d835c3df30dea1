-- run-by-timestamp.lua: look a timestamp up in a partition's tidx and resolve it to a run.
--
-- KEYS[1] idx  KEYS[2] tidx
-- ARGV[1] target timestamp in ms: the first tidx entry whose score (running max timestamp)
--         is >= target; or "max": the last tidx entry (the run that first reached the
--         partition's max timestamp).
--
-- Returns { tidx member, idx member of the first run whose last offset >= that member, tidx
-- score }, or nil when tidx has no such entry or idx has no such run.
--
-- The first run whose running max reaches T is also the first run whose own max timestamp
-- reaches T (the running max first reaches T at such a run), which is what ListOffsets by
-- timestamp needs. While the named run exists the resolution answers it exactly. If
-- DeleteRecords removed it (delete-records.lua keeps the newest stale entry for this), the
-- answer is the first remaining run, and the caller checks whether it really qualifies; so it
-- must after the log cleaner lowered the run's max timestamp or removed it (idx-swap.lua).

local idxKey, tidxKey = KEYS[1], KEYS[2]
local found
if ARGV[1] == 'max' then
  found = redis.call('ZRANGE', tidxKey, -1, -1, 'WITHSCORES')
else
  found = redis.call('ZRANGEBYSCORE', tidxKey, ARGV[1], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
end
if #found == 0 then
  return false
end
local run = redis.call('ZRANGEBYSCORE', idxKey, found[1], '+inf', 'LIMIT', 0, 1)
if #run == 0 then
  return false
end
return { found[1], run[1], found[2] }
