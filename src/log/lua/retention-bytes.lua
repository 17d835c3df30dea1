-- retention-bytes.lua: where size retention (retention.bytes) would move a partition's log
-- start. Reads only.
--
-- KEYS[1] idx
-- ARGV[1] limit: the bytes to keep (≥ 0)
-- ARGV[2] walk the runs whose last offset is at most this, as ZREVRANGEBYSCORE reads a max:
--         '+inf' to start at the newest run, '(<last>' to go on below a run already read
-- ARGV[3] bytes of the newer runs that earlier calls summed (0 to start)
-- ARGV[4] the most runs this call reads
--
-- Walks idx from the newest run back, summing byteLength, and answers
--   { 1, base }      the oldest run to keep: the first run, walking back, at which the sum
--                    reaches the limit. Every run before it may go, and what stays is at
--                    least the limit and less than the limit plus this run (Kafka deletes
--                    its oldest segments while the size less that segment stays ≥ the limit).
--   { 0 }            the walk reached the oldest run below the limit: nothing is due.
--   { 2, last, sum } this call read its share (ARGV[4]) without deciding: call again with
--                    ARGV[2] = '(' .. last and ARGV[3] = sum.
--
-- The share bounds how long one call holds Redis on a partition of many runs. Committed runs
-- never change, so continuing below a score in a later call is sound: runs committed in
-- between are newer and only mean this pass keeps a little more.

local PAGE = 128

local idxKey = KEYS[1]
local limit = tonumber(ARGV[1])
local max = ARGV[2]
local sum = tonumber(ARGV[3])
local share = tonumber(ARGV[4])
if limit == nil or limit < 0 or sum == nil or share == nil or share < 1 then
  return redis.error_reply('ERR retention-bytes: bad arguments "' .. tostring(ARGV[1]) .. '", "' .. tostring(ARGV[3]) .. '", "' .. tostring(ARGV[4]) .. '"')
end

local read = 0
local lastRead = nil
while read < share do
  local want = math.min(PAGE, share - read)
  local page = redis.call('ZREVRANGEBYSCORE', idxKey, max, '-inf', 'LIMIT', 0, want)
  for _, member in ipairs(page) do
    -- base|last|maxTimestamp|byteStart|byteLength|batchCount|objectKey
    local base, last, byteLength = string.match(member, '^([^|]*)|([^|]*)|[^|]*|[^|]*|([^|]*)|')
    sum = sum + tonumber(byteLength)
    if sum >= limit then
      return { 1, tonumber(base) }
    end
    lastRead = last
    max = '(' .. last
  end
  read = read + #page
  if #page < want then
    return { 0 }
  end
end
return { 2, tonumber(lastRead), sum }
