-- idx-swap.lua: replace consecutive runs of a partition's index with the one run that object
-- compaction rewrote them into (docs/architecture.md §4.5), atomically.
--
-- KEYS[1] meta  KEYS[2] idx  KEYS[3] tidx
-- ARGV[1] the merged run's idx member; ARGV[2..] the old runs' idx members, exactly as stored,
--         in offset order.
--
-- Returns 1 when the swap was applied, 0 when any old member is no longer in idx (retention,
-- DeleteRecords or another broker's compaction removed it, or the topic was deleted): then
-- nothing changed and the merged object is left, unreferenced, to garbage collection.
--
-- The old runs must be contiguous and cover exactly the merged run's offsets; anything else is
-- a caller's bug and answers an error before any write. meta is read (the merged run must lie
-- below hw), never written: offsets, the log start and the running max timestamp stay as they
-- are, since the records do not change.
--
-- tidx: an entry (score = running max timestamp, member = last offset of the run that raised
-- it) resolves to the first idx run whose last offset is >= its member. Entries of the old runs
-- would all resolve to the merged run, so only the highest-scored one is kept, moved to the
-- merged run's last offset: the first run whose running max reaches a timestamp T inside
-- those scores is now the merged run, and its batches before the one reaching T all lie below
-- T, so ListOffsets finds the same record. Its member then names the run's last offset again,
-- which the MAX_TIMESTAMP lookup relies on to know the run holding the max still exists. Every
-- tidx member is some run's last offset (commit.lua writes them so; DeleteRecords keeps only
-- stale members below the log start, which lie below the first remaining run), so the entries
-- inside the merged range are found by looking the old runs' last offsets up one by one.

local metaKey, idxKey, tidxKey = KEYS[1], KEYS[2], KEYS[3]
local newMember = ARGV[1]

-- "base|last|…": the first two fields, as the strings commit.lua formatted them.
local function bounds(member)
  local base, last = string.match(member, '^(%-?%d+)|(%-?%d+)|')
  if base == nil then
    return redis.error_reply('ERR idx-swap: malformed run index entry "' .. member .. '"')
  end
  return base, last
end

local newBase, newLast = bounds(newMember)
if type(newBase) == 'table' then
  return newBase
end
if #ARGV < 3 then
  return redis.error_reply('ERR idx-swap: needs the merged run and at least two old runs')
end

local lasts = {}
local expected = tonumber(newBase)
for i = 2, #ARGV do
  local base, last = bounds(ARGV[i])
  if type(base) == 'table' then
    return base
  end
  if tonumber(base) ~= expected then
    return redis.error_reply('ERR idx-swap: old run ' .. ARGV[i] .. ' does not start at offset ' .. string.format('%.0f', expected))
  end
  expected = tonumber(last) + 1
  lasts[#lasts + 1] = last
end
if expected ~= tonumber(newLast) + 1 then
  return redis.error_reply('ERR idx-swap: old runs end at ' .. string.format('%.0f', expected - 1) .. ', not at the merged run\'s last offset ' .. newLast)
end

for i = 2, #ARGV do
  if not redis.call('ZSCORE', idxKey, ARGV[i]) then
    return 0
  end
end

local hw = tonumber(redis.call('HGET', metaKey, 'hw')) or 0
if tonumber(newLast) >= hw then
  return redis.error_reply('ERR idx-swap: merged run ends at ' .. newLast .. ', not below the high watermark ' .. string.format('%.0f', hw))
end

for i = 2, #ARGV do
  redis.call('ZREM', idxKey, ARGV[i])
end
redis.call('ZADD', idxKey, newLast, newMember)

-- Old runs' tidx entries, in offset order, hence in increasing score order.
local topScore
for _, last in ipairs(lasts) do
  local score = redis.call('ZSCORE', tidxKey, last)
  if score then
    redis.call('ZREM', tidxKey, last)
    topScore = score
  end
end
if topScore then
  redis.call('ZADD', tidxKey, topScore, newLast)
end

return 1
