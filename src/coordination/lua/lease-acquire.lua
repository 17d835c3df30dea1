-- lease-acquire.lua: take (or keep) the ownership lease of one coordinator key.
--
-- KEYS[1] lease   string "<nodeId>:<token>", with a TTL
-- KEYS[2] fence   counter; every new lease gets the next token, so tokens only grow
-- ARGV[1] nodeId  ARGV[2] ttl in ms
--
-- Returns {1, token} when this node holds the lease now (freshly taken or already its own,
-- TTL renewed), or {0, holderNodeId} when another node holds it.
local current = redis.call('GET', KEYS[1])
if current then
  local node, token = string.match(current, '^(%d+):(%d+)$')
  if node == ARGV[1] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, tonumber(token)}
  end
  return {0, tonumber(node)}
end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
return {1, token}
