-- The bench's alerts from wrk, to cross-check the bench's own client (client.rs) against an outside tool.
-- Unique `timenow` per request (one wrk thread: -t1), rotating over the bench's six symbols.
--
--   BIN=$(ls -t $CARGO_TARGET_DIR/release/deps/relay-* | grep -v '\.d$' | head -1)
--   mkdir -p /tmp/bare && (sleep 40 | $BIN --serve bare --dir /tmp/bare) &   # prints LISTENING 127.0.0.1:PORT
--   wrk -t1 -c64 -d15s -s benches/relay/wrk.lua http://127.0.0.1:PORT/hooks/tradingview
--   $BIN --mode bare --warmup 0                                              # the bench's figure, same machine

local i = 0
local base = os.time() - 10000000
local symbols = { { "ES1!", 6000 }, { "MES1!", 6000 }, { "NQ1!", 21000 }, { "MNQ1!", 21000 }, { "CL1!", 70 }, { "GC1!", 2600 } }

wrk.method = "POST"
wrk.headers["Content-Type"] = "text/plain; charset=utf-8"

request = function()
  i = i + 1
  local s = symbols[i % #symbols + 1]
  local long = math.floor(i / #symbols) % 2 == 0
  local body = string.format(
    '{"secret":"bench-tv-secret-0123456789abcdef","ticker":"%s","timenow":"%s","close":%s,'
      .. '"strategy":{"action":"%s","contracts":1,"price":%s,"id":"%s","market_position":"%s","market_position_size":1}}',
    s[1], os.date("!%Y-%m-%dT%H:%M:%SZ", base + i), s[2], long and "buy" or "sell", s[2],
    long and "Long" or "Short", long and "long" or "short")
  return wrk.format(nil, nil, nil, body)
end
