"""The record/replay cache: content addressing, replay with the server gone, corrupt lines."""
from __future__ import annotations

import json

import pytest

import cassandra_wm.paths as paths
from cassandra_wm.llm import (CachedChat, LLMError, OpenAIChat, ScriptedChat, cache_mode, describe_llm, get_chat,
                              model_slug, request_key, usage_totals)

SCHEMA = {"type": "object", "properties": {"answer": {"type": "boolean"}}, "required": ["answer"]}
MSG = [{"role": "user", "content": "Is the espresso machine a parent of the queue length? JSON please."}]


@pytest.fixture
def cache_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "LLM_CACHE", tmp_path / "llm_cache")
    monkeypatch.setattr(paths, "SHIPPED_LLM_CACHE", tmp_path / "shipped")
    monkeypatch.delenv("CASSANDRA_LLM_CACHE", raising=False)
    return tmp_path / "llm_cache"


def test_record_then_replay_with_server_gone(chat_server, cache_dir):
    lps = [("true", -0.1, [("true", -0.1), ("false", -2.4)])]
    chat_server.add(chat_server.ok('{"answer": true}', logprobs=lps, prompt_tokens=30, completion_tokens=5))
    rec = CachedChat(OpenAIChat("fake-model", chat_server.base_url, max_retries=0), mode="record", stage="prior")
    r1 = rec.chat(MSG, schema=SCHEMA, logprobs=True, top_logprobs=2, seed=1)
    assert not r1.cached and r1.parsed == {"answer": True}
    path = cache_dir / "fake-model.jsonl"
    line = json.loads(path.read_text().splitlines()[0])
    ep = chat_server.base_url
    assert line["key"] == request_key("fake-model", MSG, SCHEMA, True, 2, 0.0, 1, 512, 0, endpoint=ep)[0]
    assert line["stage"] == "prior" and line["model"] == "fake-model" and line["endpoint"] == ep
    assert line["request"]["messages"] == MSG

    chat_server.close()  # nobody answers from here on
    for mode in ("record", "replay"):
        c = CachedChat(OpenAIChat("fake-model", chat_server.base_url, max_retries=0), mode=mode, stage="prior")
        r2 = c.chat(MSG, schema=SCHEMA, logprobs=True, top_logprobs=2, seed=1)
        assert r2.cached and r2.text == r1.text and r2.parsed == r1.parsed
        assert r2.token_logprobs == r1.token_logprobs
        assert r2.usage["prompt_tokens"] == 30
    assert usage_totals()["prior"]["cache_hits"] == 2 and usage_totals()["prior"]["calls"] == 1
    # a different request still needs the (dead) server
    with pytest.raises(LLMError, match="cannot reach"):
        c2 = CachedChat(OpenAIChat("fake-model", chat_server.base_url, max_retries=0), mode="record")
        c2.chat(MSG, schema=SCHEMA, logprobs=True, top_logprobs=2, seed=2)


def test_replay_miss_names_stage_and_hash(cache_dir):
    c = CachedChat(None, mode="replay", model="some-model", stage="03_structure", endpoint="http://h/v1")
    key, _ = request_key("some-model", MSG, temperature=0.7, sample_index=3, endpoint="http://h/v1")
    with pytest.raises(LLMError) as e:
        c.chat(MSG, temperature=0.7, sample_index=3)
    msg = str(e.value)
    assert "'03_structure'" in msg and key in msg and "CASSANDRA_LLM_CACHE=record" in msg
    assert str(cache_dir / "some-model.jsonl") in msg


def test_every_sampling_parameter_is_in_the_key_but_not_the_stage():
    base = dict(schema=SCHEMA, logprobs=True, top_logprobs=5, temperature=0.0, seed=0, max_tokens=100,
                sample_index=0)
    k0 = request_key("m", MSG, **base)[0]
    changes = dict(schema=None, logprobs=False, top_logprobs=3, temperature=0.7, seed=1, max_tokens=101,
                   sample_index=1)
    for name, value in changes.items():
        assert request_key("m", MSG, **{**base, name: value})[0] != k0, name
    assert request_key("other", MSG, **base)[0] != k0
    assert request_key("m", MSG + [{"role": "user", "content": "x"}], **base)[0] != k0


def test_stage_does_not_change_the_key(cache_dir):
    inner = ScriptedChat(['{"answer": true}'], model="scripted-m")
    CachedChat(inner, mode="record", stage="stage-a").chat(MSG, schema=SCHEMA)
    r = CachedChat(inner, mode="replay", stage="stage-b").chat(MSG, schema=SCHEMA)
    assert r.cached and r.parsed == {"answer": True} and len(inner.requests) == 1


def test_corrupt_and_truncated_lines_are_skipped_with_warnings(cache_dir):
    inner = ScriptedChat(['{"answer": true}', '{"answer": false}', '{"answer": true}'], model="m2")
    path = cache_dir / "m2.jsonl"
    CachedChat(inner, mode="record").chat(MSG, schema=SCHEMA, seed=1)
    CachedChat(inner, mode="record").chat(MSG, schema=SCHEMA, seed=2)
    lines = path.read_text().splitlines()
    # line 2 garbled, line 3 not a record, then the good line, then a write cut short
    path.write_text(lines[0] + "\n{not json\n[1, 2]\n" + lines[1] + "\n" + lines[1][:40])

    from cassandra_wm.llm import cache as cache_module
    cache_module._FILES.clear()  # as a fresh process would see it
    c = CachedChat(None, mode="replay", model="m2")
    with pytest.warns(RuntimeWarning) as w:
        assert c.chat(MSG, schema=SCHEMA, seed=1).parsed == {"answer": True}
    text = [str(x.message) for x in w]
    assert any("line 2 skipped, not valid JSON" in t for t in text)
    assert any("line 3 skipped, missing 'key'" in t for t in text)
    assert any("line 5 skipped, truncated" in t for t in text)
    assert all(str(path) in t for t in text)
    assert c.chat(MSG, schema=SCHEMA, seed=2).parsed == {"answer": False}

    # recording after a truncated line starts on a fresh line and stays readable
    CachedChat(inner, mode="record", model="m2").chat(MSG, schema=SCHEMA, seed=3)
    cache_module._FILES.clear()
    with pytest.warns(RuntimeWarning):
        r = CachedChat(None, mode="replay", model="m2").chat(MSG, schema=SCHEMA, seed=3)
    assert r.cached and r.parsed == {"answer": True}
    assert path.read_text().endswith("\n")


def test_modes_and_env(monkeypatch, cache_dir):
    monkeypatch.setenv("CASSANDRA_LLM_CACHE", "replay")
    assert cache_mode() == "replay" and cache_mode("off") == "off"
    monkeypatch.setenv("CASSANDRA_LLM_CACHE", "sometimes")
    with pytest.raises(ValueError, match="off, record, replay"):
        cache_mode()
    inner = ScriptedChat(["a", "b"], model="m3")
    c = CachedChat(inner, mode="off")
    assert c.chat(MSG).text == "a" and c.chat(MSG).text == "b"  # nothing stored, nothing served
    assert not (cache_dir / "m3.jsonl").exists()
    with pytest.raises(ValueError, match="replay mode"):
        CachedChat(None, mode="record", model="m3")


def test_replay_spec_reads_the_model_from_the_file(cache_dir):
    inner = ScriptedChat(['{"answer": true}'], model="Some Model (Q8, local)")
    CachedChat(inner, mode="record").chat(MSG, schema=SCHEMA)
    slug = model_slug("Some Model (Q8, local)")
    assert slug == "some-model-q8-local"
    assert describe_llm(f"replay:{slug}") == "Some Model (Q8, local)"
    c = get_chat(f"replay:{slug}", stage="x")
    assert c.model == "Some Model (Q8, local)" and c.chat(MSG, schema=SCHEMA).cached
    with pytest.raises(ValueError, match="can only replay"):
        get_chat(f"replay:{slug}", cache="record")
    with pytest.raises(LLMError, match="recorded caches here: some-model-q8-local$"):
        get_chat("replay:nope")


def test_local_replay_starts_no_server(cache_dir):
    from cassandra_wm.llm import local

    c = get_chat("local", stage="s", cache="replay")
    assert c.model.startswith("SmolLM2-135M-Instruct") and c.inner is None
    with pytest.raises(LLMError, match="replay miss"):
        c.chat(MSG)
    assert local._SHARED is None


def test_cache_allows_follows_the_mode(monkeypatch):
    from cassandra_wm.llm import cache_allows

    assert [cache_allows(a, "record") for a in ("read", "write")] == [True, True]
    assert [cache_allows(a, "replay") for a in ("read", "write")] == [True, False]
    assert [cache_allows(a, "off") for a in ("read", "write")] == [False, False]
    monkeypatch.setenv("CASSANDRA_LLM_CACHE", "off")
    assert not cache_allows("read")
    with pytest.raises(ValueError):
        cache_allows("delete")


def test_answers_recorded_at_one_endpoint_are_not_served_for_another(cache_dir):
    a = ScriptedChat(['{"answer": true}'], model="m5")
    a.endpoint_id = "http://server-a:8000/v1"
    CachedChat(a, mode="record").chat(MSG, schema=SCHEMA)
    b = ScriptedChat(['{"answer": false}'], model="m5")
    b.endpoint_id = "http://server-b:8000/v1"
    assert CachedChat(b, mode="record").chat(MSG, schema=SCHEMA).parsed == {"answer": False}
    assert len(b.requests) == 1  # asked, not served server a's answer
    with pytest.raises(LLMError, match="replay miss.*server-c"):
        CachedChat(None, mode="replay", model="m5", endpoint="http://server-c:8000/v1").chat(MSG, schema=SCHEMA)
    with pytest.raises(LLMError, match="several endpoints"):
        CachedChat(None, mode="replay", model="m5").chat(MSG, schema=SCHEMA)
    r = CachedChat(None, mode="replay", model="m5", endpoint="http://server-a:8000/v1").chat(MSG, schema=SCHEMA)
    assert r.parsed == {"answer": True}


def test_unusable_scripted_reply_is_an_error_and_not_recorded(cache_dir):
    from cassandra_wm.llm import UnusableReply

    inner = ScriptedChat(['{"answer": "perhaps"}', "", '{"answer": true}'], model="m6")
    for kind in ("schema", "empty"):
        with pytest.raises(UnusableReply) as e:
            CachedChat(inner, mode="record", stage="st").chat(MSG, schema=SCHEMA)
        assert e.value.kind == kind
    assert not (cache_dir / "m6.jsonl").exists()
    assert usage_totals()["st"]["errors"] == 2
    assert CachedChat(inner, mode="record").chat(MSG, schema=SCHEMA).parsed == {"answer": True}


def test_migration_rekeys_by_endpoint_drops_unusable_and_is_deterministic(cache_dir, tmp_path):
    from cassandra_wm.llm import migrate_cache_file, scan_cache_file

    good = {"text": '{"answer": true}', "parsed": {"answer": True}, "usage": {"finish_reason": "stop"}, "model": "m7"}
    cut = {"text": '{"answer": ', "usage": {"finish_reason": "length"}, "model": "m7"}
    recs = []
    for i, reply in enumerate([good, cut, good]):
        key, req = request_key("m7", MSG, SCHEMA, seed=i)  # the old form: no endpoint
        recs.append({"key": key, "model": "m7", "stage": "s", "created": "2025-01-01", "request": req, "reply": reply})
    old = tmp_path / "old.jsonl"
    old.write_text("".join(json.dumps(r) + "\n" for r in recs) + "{broken\n")
    assert scan_cache_file(old)["legacy"] == 3
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    st = migrate_cache_file(old, "http://h:1/v1", a)
    migrate_cache_file(old, "http://h:1/v1", b)
    assert a.read_bytes() == b.read_bytes()
    assert (st["read"], st["kept"], st["rekeyed"], len(st["dropped"])) == (4, 2, 2, 2)
    scan = scan_cache_file(a)
    assert scan["usable"] == 2 and not scan["problems"] and scan["legacy"] == 0
    again = migrate_cache_file(a, "http://other/v1")  # idempotent: keeps the endpoint already named
    assert again["rekeyed"] == 0 and a.read_bytes() == b.read_bytes()
    lines = [json.loads(x) for x in a.read_text().splitlines()]
    assert [x["reply"] for x in lines] == [good, good]  # replies copied unchanged
    r = CachedChat(None, mode="replay", model="m7", path=a, endpoint="http://h:1/v1").chat(MSG, schema=SCHEMA, seed=2)
    assert r.cached and r.parsed == {"answer": True}


SHIPPED = paths.ROOT / "data" / "llm_cache" / "smollm2-135m-instruct-q4_1-gguf-llama.cpp-local.jsonl"


def test_shipped_cache_is_clean_and_keyed_by_the_local_model_file():
    from cassandra_wm.llm import local_endpoint_id, scan_cache_file

    st = scan_cache_file(SHIPPED)
    assert st["records"] > 250 and not st["problems"] and st["legacy"] == 0
    first = json.loads(SHIPPED.read_text().splitlines()[0])
    assert first["request"]["endpoint"] == local_endpoint_id()
    assert local_endpoint_id().startswith("local:sha256:")


def test_shipped_answers_replay_whatever_the_output_folder(tmp_path):
    """A replay into another CASSANDRA_OUT still finds the shipped answers (and writes nothing there)."""
    import subprocess
    import sys

    rec = json.loads(SHIPPED.read_text().splitlines()[-1])
    req = rec["request"]
    code = (
        "import json, sys\n"
        "from cassandra_wm.llm import get_chat\n"
        "req = json.loads(sys.stdin.read())\n"
        "c = get_chat('local', stage='t', cache='replay')\n"
        "r = c.chat(req['messages'], schema=req['schema'], logprobs=req['logprobs'], "
        "top_logprobs=req['top_logprobs'], temperature=req['temperature'], seed=req['seed'], "
        "max_tokens=req['max_tokens'], sample_index=req['sample_index'])\n"
        "print(json.dumps({'text': r.text, 'cached': r.cached, 'label': c.label}))\n")
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("CASSANDRA_")}
    env["CASSANDRA_OUT"] = str(tmp_path)
    res = subprocess.run([sys.executable, "-c", code], input=json.dumps(req), capture_output=True, text=True,
                         env=env, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["cached"] and out["text"] == rec["reply"]["text"]
    assert out["label"] == rec["model"]
    assert not (tmp_path / "data").exists()
