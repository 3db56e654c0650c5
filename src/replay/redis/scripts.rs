//! The Lua scripts of [`RedisStore`](super::RedisStore): each check and its write in one
//! atomic step. Keys: `KEYS[1]` the log (a stream), `KEYS[2]` its hash.

use ::redis::Script;

#[derive(Debug)]
pub(super) struct Scripts {
    pub(super) create: Script,
    pub(super) create_broken: Script,
    pub(super) append: Script,
    pub(super) finish: Script,
    pub(super) beat: Script,
    pub(super) attach: Script,
    pub(super) take: Script,
    pub(super) read: Script,
    pub(super) reader_age: Script,
}

/// Redis server time in ms, in every script.
const NOW: &str =
    "local t = redis.call('TIME') local now = t[1] * 1000 + math.floor(t[2] / 1000)\n";

/// Starts a new generation of the log (`gen` its number): empty, unread, `broken` as
/// given, written by the writer of nonce ARGV[2], expiring after ARGV[1] ms unless beaten.
fn new_generation(broken: u8) -> String {
    format!(
        "redis.call('DEL', KEYS[1])
        local gen = redis.call('HINCRBY', KEYS[2], 'gen', 1)
        redis.call('HSET', KEYS[2], 'wbeat', now, 'bytes', 0, 'done', 0, 'broken', {broken},
            'last', 0, 'writer', ARGV[2])
        redis.call('HDEL', KEYS[2], 'rbeat')
        redis.call('PEXPIRE', KEYS[2], ARGV[1])
        "
    )
}

impl Scripts {
    pub(super) fn new() -> Self {
        let s = |body: &str| Script::new(&format!("{NOW}{body}"));
        Scripts {
            // ARGV: live expiry ms, the writer's nonce. Returns the new generation, or
            // -1 when `create_broken` already ran for this writer (this `create` timed
            // out on the client and reached Redis late).
            create: s(&format!(
                "if redis.call('HGET', KEYS[2], 'writer') == ARGV[2] then return -1 end
                {}return gen",
                new_generation(0)
            )),
            // For a search whose `create` failed (Redis was away): once Redis answers,
            // a log of its own, marked broken, so a resume elsewhere is told so instead
            // of being served an older search's log of the same id. A live writer of a
            // newer search is left alone; this writer's own `create`, reaching Redis late,
            // is not. ARGV: live expiry ms, the writer's nonce, stale ms.
            // Returns 1 when marked, 0 when left alone.
            create_broken: s(&format!(
                "local m = redis.call('HMGET', KEYS[2], 'wbeat', 'done', 'broken', 'writer')
                if m[1] and m[2] ~= '1' and m[3] ~= '1' and m[4] ~= ARGV[2]
                    and now - tonumber(m[1]) <= tonumber(ARGV[3]) then return 0 end
                {}return 1",
                new_generation(1)
            )),
            // ARGV: gen, frame id, body, max log bytes, live expiry ms.
            // Returns -1 when replaced, else the frames deleted for room.
            append: s("if redis.call('HGET', KEYS[2], 'gen') ~= ARGV[1] then return -1 end
                local len = string.len(ARGV[3])
                local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes') or '0')
                local trimmed = 0
                while bytes > 0 and bytes + len > tonumber(ARGV[4]) do
                    local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
                    if #first == 0 then bytes = 0 break end
                    bytes = bytes - string.len(first[1][2][2])
                    redis.call('XDEL', KEYS[1], first[1][1])
                    trimmed = trimmed + 1
                end
                redis.call('XADD', KEYS[1], ARGV[2] .. '-0', 'b', ARGV[3])
                redis.call('HSET', KEYS[2], 'bytes', bytes + len, 'last', ARGV[2])
                redis.call('PEXPIRE', KEYS[1], ARGV[5])
                redis.call('PEXPIRE', KEYS[2], ARGV[5])
                return trimmed"),
            // ARGV: gen, ttl ms, then optionally the last frame's id and body.
            finish: s("if redis.call('HGET', KEYS[2], 'gen') ~= ARGV[1] then return -1 end
                if redis.call('HGET', KEYS[2], 'done') == '1' then return 0 end
                if ARGV[3] then
                    redis.call('XADD', KEYS[1], ARGV[3] .. '-0', 'b', ARGV[4])
                    redis.call('HSET', KEYS[2], 'last', ARGV[3])
                end
                local last = redis.call('HGET', KEYS[2], 'last')
                redis.call('XADD', KEYS[1], last .. '-1', 'b', '')
                redis.call('HSET', KEYS[2], 'done', 1)
                redis.call('PEXPIRE', KEYS[1], ARGV[2])
                redis.call('PEXPIRE', KEYS[2], ARGV[2])
                return 1"),
            // ARGV: gen, live expiry ms, broken (1/0). Returns -1 when replaced.
            beat: s("if redis.call('HGET', KEYS[2], 'gen') ~= ARGV[1] then return -1 end
                if redis.call('HGET', KEYS[2], 'done') == '1' then return 0 end
                redis.call('HSET', KEYS[2], 'wbeat', now, 'broken', ARGV[3])
                redis.call('PEXPIRE', KEYS[1], ARGV[2])
                redis.call('PEXPIRE', KEYS[2], ARGV[2])
                return 1"),
            // A reader on this instance of another's log. ARGV: the entry that must come
            // next ("n+1-0"), or the end right after frame n ("n-1"), "(n-0", n.
            // Returns {'ok', gen, token}, {'unsent', last} or {why}; an n past the last
            // id is refused before any takeover.
            attach: s("local m = redis.call('HMGET', KEYS[2], 'gen', 'broken', 'last', 'done')
                if not m[1] then return {'expired'} end
                if m[2] == '1' then return {'broken'} end
                local last = tonumber(m[3] or '0')
                local after = tonumber(ARGV[4])
                if after > last then
                    if m[4] == '1' and after == last + 1 then return {'finished'} end
                    return {'unsent', m[3] or '0'}
                end
                local first = redis.call('XRANGE', KEYS[1], ARGV[3], '+', 'COUNT', 1)
                if #first > 0 and first[1][1] ~= ARGV[1] and first[1][1] ~= ARGV[2] then
                    return {'expired'}
                end
                local token = redis.call('HINCRBY', KEYS[2], 'reader', 1)
                redis.call('HSET', KEYS[2], 'rbeat', now)
                return {'ok', m[1], token}"),
            // A reader of this instance's own copy takes over from readers elsewhere.
            // Returns {gen, token} or {}.
            take: s("local gen = redis.call('HGET', KEYS[2], 'gen')
                if not gen then return {} end
                return {gen, redis.call('HINCRBY', KEYS[2], 'reader', 1)}"),
            // ARGV: gen, token, after ("(n-0"), count, stale ms.
            // Returns {why} or {'ok', stale, done, id1, body1, ...}.
            read: s("local m = redis.call('HMGET', KEYS[2], 'gen', 'reader', 'wbeat', 'broken', 'done')
                if not m[1] then return {'expired'} end
                if m[1] ~= ARGV[1] then return {'replaced'} end
                if m[2] ~= ARGV[2] then return {'superseded'} end
                if m[4] == '1' then return {'broken'} end
                redis.call('HSET', KEYS[2], 'rbeat', now)
                local stale = 0
                if m[5] ~= '1' and now - tonumber(m[3] or '0') > tonumber(ARGV[5]) then stale = 1 end
                local out = {'ok', stale, tonumber(m[5] or '0')}
                for _, e in ipairs(redis.call('XRANGE', KEYS[1], ARGV[3], '+', 'COUNT', ARGV[4])) do
                    out[#out + 1] = e[1]
                    out[#out + 1] = e[2][2]
                end
                return out"),
            // ARGV: gen. Ms since a reader elsewhere was last seen; -1 none, -2 replaced.
            reader_age: s("local m = redis.call('HMGET', KEYS[2], 'gen', 'rbeat')
                if m[1] ~= ARGV[1] then return -2 end
                if not m[2] then return -1 end
                return now - tonumber(m[2])"),
        }
    }
}
