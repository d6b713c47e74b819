-- POST /v1/chat/completions: one small non-stream OpenAI chat request for the echo model.
-- The request never changes, so wrk sends it without calling Lua per request.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "stats.lua")

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"echo","messages":['
   .. '{"role":"system","content":"You answer in one sentence."},'
   .. '{"role":"user","content":"What is the capital of France?"}],"stream":false}'
