-- idx-swap.lua: replace consecutive runs of a partition's index with the one run they were
-- rewritten into, or with none, atomically: object compaction's merge (docs/architecture.md
-- §4.5) and the log cleaner's rewrite (§4.6).
--
-- KEYS[1] meta  KEYS[2] idx  KEYS[3] tidx  KEYS[4] aborted
-- ARGV[1] commit-by time (ms, Redis's clock; -1 for none): the new object's commit deadline
--         (commit-deadline.ts), checked against TIME before anything else
-- The other arguments, numbered A[i] = ARGV[i + 1]:
-- A[1] the new run's idx member, or '' for none (the cleaner removed every record)
-- A[2] n, the number of old runs; A[3 .. 2+n] their idx members, exactly as stored, in
--      offset order
-- then, for the log cleaner (absent or '' otherwise):
-- A[3+n] cleanedTo: the partition's first dirty offset (meta field cleanedTo, only raised)
-- A[4+n] cleanHorizon: when the earliest kept tombstone or marker may go (meta field
--        cleanHorizon); '-' removes the field
-- A[5+n ..] members of aborted to remove (transactions whose abort markers the rewrite
--        dropped)
--
-- Returns 1 when the swap was applied, 0 when any old member is no longer in idx (retention,
-- DeleteRecords or another broker's compaction or cleaner removed it, or the topic was
-- deleted), -1 when the commit-by time has passed (object GC may already count the new object
-- as garbage); in both cases nothing changed and the new object is left, unreferenced, to
-- garbage collection. n = 0 with no new run only writes the meta fields and aborted removals.
--
-- The old runs must lie in offset order without overlapping, be consecutive entries of idx
-- (offsets between them are gaps no run covers, which the cleaner leaves), and the new run
-- must span exactly from the first one's base to the last one's last offset; anything else is
-- a caller's bug and answers an error before any write. meta's offsets, log start and running
-- max timestamp are never written: the offsets do not change.
--
-- tidx: an entry (score = running max timestamp, member = last offset of the run that raised
-- it) resolves to the first idx run whose last offset is >= its member. Entries of the old runs
-- would all resolve to the new run (or, without one, to the run after them), so only the
-- highest-scored one is kept, moved to the new run's last offset, or left where it is when
-- there is no new run. The first run whose running max reaches a timestamp T inside those
-- scores is now the new run (or the one after), every run before it lies below T, and readers
-- walk on from there past runs that no longer reach T (the cleaner lowers a run's max when it
-- removes records): ListOffsets finds the same record or, for removed ones, the next. A kept
-- entry names the new run's last offset again when there is one, which the MAX_TIMESTAMP
-- lookup checks together with its score. Entries inside the range are found by looking the old
-- runs' last offsets up one by one (commit.lua writes every member as some run's last offset;
-- one left behind by a cleaner swap without new run is found by no later lookup and stays,
-- harmlessly, below the entries after it).

local metaKey, idxKey, tidxKey, abortedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local commitBy = tonumber(ARGV[1])
if commitBy == nil then
  return redis.error_reply('ERR idx-swap: commit-by time "' .. tostring(ARGV[1]) .. '" is not a number')
end
if commitBy >= 0 then
  local t = redis.call('TIME')
  if tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) > commitBy then
    return -1
  end
end
local A = {}
for i = 2, #ARGV do
  A[i - 1] = ARGV[i]
end
local newMember = A[1]
local n = tonumber(A[2])

local function fmt(x)
  return string.format('%.0f', x)
end

-- "base|last|…": the first two fields, as the strings commit.lua formatted them.
local function bounds(member)
  local base, last = string.match(member, '^(%-?%d+)|(%-?%d+)|')
  if base == nil then
    return redis.error_reply('ERR idx-swap: malformed run index entry "' .. member .. '"')
  end
  return base, last
end

if n == nil or n < 0 or #A < 2 + n then
  return redis.error_reply('ERR idx-swap: expected the new run, the old run count and that many old runs, got ' .. #A .. ' arguments')
end
local hasNew = newMember ~= ''
if hasNew and n < 1 then
  return redis.error_reply('ERR idx-swap: a new run needs at least one old run to replace')
end

local newBase, newLast
if hasNew then
  newBase, newLast = bounds(newMember)
  if type(newBase) == 'table' then
    return newBase
  end
end

local lasts = {}
local firstBase, prevLast
for i = 3, 2 + n do
  local base, last = bounds(A[i])
  if type(base) == 'table' then
    return base
  end
  if prevLast ~= nil and tonumber(base) <= tonumber(prevLast) then
    return redis.error_reply('ERR idx-swap: old run ' .. A[i] .. ' does not start after offset ' .. prevLast)
  end
  firstBase = firstBase or base
  prevLast = last
  lasts[#lasts + 1] = last
end
if hasNew then
  if tonumber(newBase) ~= tonumber(firstBase) then
    return redis.error_reply('ERR idx-swap: old runs start at ' .. firstBase .. ', not at the new run\'s base offset ' .. newBase)
  end
  if tonumber(newLast) ~= tonumber(prevLast) then
    return redis.error_reply('ERR idx-swap: old runs end at ' .. prevLast .. ', not at the merged run\'s last offset ' .. newLast)
  end
end

for i = 3, 2 + n do
  if not redis.call('ZSCORE', idxKey, A[i]) then
    return 0
  end
end

-- Every old run is in idx; no other run may sit between two of them.
for i = 2, #lasts do
  if redis.call('ZCOUNT', idxKey, '(' .. lasts[i - 1], '(' .. lasts[i]) > 0 then
    local base = bounds(A[2 + i])
    return redis.error_reply('ERR idx-swap: old run ' .. A[2 + i] .. ' does not start at offset ' .. fmt(tonumber(lasts[i - 1]) + 1) ..
      ' and idx holds runs between offsets ' .. lasts[i - 1] .. ' and ' .. base)
  end
end

if hasNew then
  local hw = tonumber(redis.call('HGET', metaKey, 'hw')) or 0
  if tonumber(newLast) >= hw then
    return redis.error_reply('ERR idx-swap: merged run ends at ' .. newLast .. ', not below the high watermark ' .. fmt(hw))
  end
end

for i = 3, 2 + n do
  redis.call('ZREM', idxKey, A[i])
end
if hasNew then
  redis.call('ZADD', idxKey, newLast, newMember)
end

-- Old runs' tidx entries, in offset order, hence in increasing score order.
local top, topScore
for _, last in ipairs(lasts) do
  local score = redis.call('ZSCORE', tidxKey, last)
  if score then
    redis.call('ZREM', tidxKey, last)
    top, topScore = last, score
  end
end
if topScore then
  redis.call('ZADD', tidxKey, topScore, hasNew and newLast or top)
end

-- The cleaner's state is written only while the partition exists: a pass finishing after its
-- topic was deleted must not leave a meta hash behind.
local cleanedTo, horizon = A[3 + n], A[4 + n]
if redis.call('EXISTS', metaKey) == 0 then
  cleanedTo, horizon = nil, nil
end
if cleanedTo ~= nil and cleanedTo ~= '' then
  local current = tonumber(redis.call('HGET', metaKey, 'cleanedTo')) or 0
  if tonumber(cleanedTo) > current then
    redis.call('HSET', metaKey, 'cleanedTo', cleanedTo)
  end
end
if horizon == '-' then
  redis.call('HDEL', metaKey, 'cleanHorizon')
elseif horizon ~= nil and horizon ~= '' then
  redis.call('HSET', metaKey, 'cleanHorizon', horizon)
end
for i = 5 + n, #A do
  redis.call('ZREM', abortedKey, A[i])
end

return 1
