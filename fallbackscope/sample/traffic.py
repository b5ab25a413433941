"""Traffic of the sample generator: chains planted scenario by scenario (refusals and their credits,
errors and retries, server-side fallback, quality escalation), sessions, and the Message Batches file."""

from __future__ import annotations

import string
from typing import Any

from fallbackscope.sample.spec import (
    ALNUM,
    ALT,
    BATCH_WORKLOAD,
    BY_NAME,
    CREDIT_FATES,
    DATED,
    ERROR_BAG,
    ERRORS,
    FABLE,
    HAIKU,
    NOT_APPLIED,
    OPUS,
    RETRYABLE,
    SCENARIOS,
    SERVER_PLANS,
    SONNET,
    VOCAB,
    WORKLOADS,
    Chain,
    Ctx,
    Hop,
    Workload,
)
from fallbackscope.sample.writer import LineWriter, iteration


class Traffic(LineWriter):
    """Plants chains scenario by scenario, recording each line and each attempt it stands for."""

    def __init__(self, seed: int, prompt_words: tuple[int, int]) -> None:
        super().__init__(seed)
        self.prompt_words = prompt_words
        self.chains: list[Chain] = []
        self.reask: list[tuple[int, list[dict[str, Any]]]] = []  # (day, messages) of doc-summarise
        self.systems = {w.name: self.text(60, 140) for w in WORKLOADS}

    # -- one call --------------------------------------------------------------------------------------
    def call(
        self,
        c: Ctx,
        model: str,
        result: str = "ok",
        *,
        err: str | None = None,
        gap: float = 0.0,
        trigger: str | None = None,
        accepted: bool | None = None,
        disclosed: bool | None = None,
        present: str | None = None,
        status: dict[str, str] | None = None,
        read: int | None = None,
        mint: bool = True,
        partial: bool = False,
        prefill: str | None = None,
    ) -> Hop:
        """Plant one exchange line of one attempt; `result` is ok, refusal, error or stream_error."""
        rng = self.rng
        c.t += int(gap * 1000)
        ts = c.t
        hop = Hop(ts, model, intended=c.intended, presented=present)
        f: dict[str, Any] = {}
        if c.chain_id and c.chain.hops and trigger:
            f["trigger"] = trigger
        if c.intended:
            f["intended_model"] = c.intended
        if disclosed is not None:
            f["disclosed"] = disclosed
        if c.wl.quality and result == "ok":
            hop.accepted = True if accepted is None else accepted
            f["accepted"] = hop.accepted
        request = self.request(c, model, present, prefill)
        if result == "error":
            cls, status_code, etype, text = ERRORS[err or "529"]
            hop.error_class, hop.outcome = cls, cls if cls in ("timeout", "connection") else "error"
            if isinstance(status_code, str):
                latency = rng.randint(60_000, 120_000) if cls == "timeout" else rng.randint(5, 3_000)
                f["transport_error"] = status_code
                f["request"] = request
            else:
                rid = self.uid("req_")
                latency = rng.randint(30_000, 90_000) if cls == "timeout" else rng.randint(40, 900)
                f.update(
                    request_id=rid,
                    http_status=status_code,
                    request=request,
                    response={"type": "error", "error": {"type": etype, "message": text}, "request_id": rid},
                )
            self.emit(c, ts, latency, f, [hop])
            return hop
        hop.http_2xx = result != "stream_error"
        served = DATED.get(model, model)
        if result == "refusal":
            hop.outcome, hop.category = "refusal", self.category(c.wl)
            content = [{"type": "text", "text": self.text(10, 60)}] if partial else []
            out = sum(len(b["text"]) // 4 for b in content) + rng.randint(0, 3)
            usage, hop.cache_total = self.usage(c, out)
            details = self.refusal_details(hop, mint, partial)
            hop.partial = content[0]["text"] if partial else None
            msg = self.message(served, content, "refusal", usage, details)
            latency = rng.randint(250, 1_500) + out * 20
        else:
            content, stop = self.content(c, model)
            out = sum(len(str(b.get("text") or b.get("thinking") or b.get("input"))) // 4 for b in content)
            if status:
                hop.credit_status = status["type"]
            usage, _ = self.usage(c, out, read=read, status=status)
            msg = self.message(served, content, stop, usage)
            latency = rng.randint(400, 1_500) + out * rng.randint(12, 30)
        f.update(request_id=self.uid("req_"), http_status=200, request=request)
        if result == "stream_error":
            hop.outcome, hop.error_class = "error", "overloaded"
            msg["content"] = [{"type": "text", "text": self.text(10, 40)}]
            f["events"] = self.events(msg, error={"type": "overloaded_error", "message": "Overloaded"})
        elif c.stream:
            f["events"] = self.events(msg)
        else:
            f["response"] = msg
        self.emit(c, ts, latency, f, [hop])
        return hop

    def server_call(self, c: Ctx) -> None:
        """Plant one request with `fallbacks` answered by one response holding its hops (docs/metrics.md §3.7)."""
        rng, ts = self.rng, c.t
        weights = [w * (c.boost if any(t == "refusal" for _, t in plan) else 1) for plan, w in SERVER_PLANS]
        plan = rng.choices([p for p, _ in SERVER_PLANS], weights)[0]
        serving = [FABLE, OPUS, SONNET][len(plan)]
        content: list[dict[str, Any]] = []
        iterations: list[dict[str, Any]] = []
        hops: list[Hop] = []
        for i, (model, trigger_type) in enumerate(plan):
            hop = Hop(ts, model, outcome="refusal" if trigger_type == "refusal" else "error", http_2xx=True)
            trigger: dict[str, Any] = {"type": trigger_type}
            if trigger_type == "refusal":
                hop.category = trigger["category"] = self.category(c.wl)
                if rng.random() < 0.2:  # output before the model declined: that hop is billed
                    content.append({"type": "text", "text": self.text(10, 40)})
            else:
                hop.error_class = "overloaded"
            content.append(
                {
                    "type": "fallback",
                    "from": {"model": model},
                    "to": {"model": ([m for m, _ in plan] + [serving])[i + 1]},
                    "trigger": trigger,
                }
            )
            hops.append(hop)
            usage, _ = self.usage(c, rng.randint(0, 40) if trigger_type == "refusal" else 0)
            iterations.append(iteration("message", model, usage))
        web = rng.choice([0, 1, 1, 2, 3])
        for _ in range(web):
            tid = self.uid("srvtoolu_")
            content += [
                {"type": "server_tool_use", "id": tid, "name": "web_search", "input": {"query": self.text(3, 8)}},
                {
                    "type": "web_search_tool_result",
                    "tool_use_id": tid,
                    "content": [
                        {
                            "type": "web_search_result",
                            "url": f"https://example.com/{rng.choice(VOCAB)}",
                            "title": self.text(3, 8),
                            "encrypted_content": "".join(rng.choices(ALNUM, k=64)),
                        }
                    ],
                },
            ]
        body, stop = self.content(c, serving)
        content += body
        out = sum(len(b.get("text", "")) // 4 for b in body)
        usage, _ = self.usage(c, out, web=web)
        hops.append(Hop(ts, serving, http_2xx=True))
        if plan and rng.random() < 0.75:
            iterations.append(iteration("fallback_message", serving, usage))
            for key in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
                usage[key] = sum(it[key] for it in iterations)
            usage["iterations"] = iterations
        elif not plan and rng.random() < 0.2:  # a lone `message` iteration: one attempt
            usage["iterations"] = [
                {"type": "message", "model": serving, "input_tokens": usage["input_tokens"], "output_tokens": out}
            ]
        msg = self.message(DATED.get(serving, serving), content, stop, usage)
        rid = self.uid("req_")
        latency = rng.randint(2_000, 9_000) * (1 + len(plan)) + out * 15
        self.emit(
            c,
            ts,
            latency,
            {"request_id": rid, "http_status": 200, "request": self.request(c, FABLE, None, None), "response": msg},
            hops,
        )

    # -- scenarios -------------------------------------------------------------------------------------
    def refusal_chain(self, c: Ctx) -> None:
        """A refusal on the first model, then what the app does with its credit (docs/metrics.md §6.5)."""
        rng, wl = self.rng, c.wl
        fate = self.draw("credit", CREDIT_FATES)
        h = self.call(c, c.wl.start, "refusal", mint=fate != "no_token", partial=c.stream and rng.random() < 0.6)
        if fate == "loop":  # the refused turn is resent as is, twice more (a refusal loop, §5)
            c.chain.loop = True
            for _ in range(2):
                h = self.call(c, c.wl.start, "refusal", gap=rng.uniform(5, 40), trigger="refusal")
            fate = "redeemed"
        tok, quick = h.minted, rng.uniform(0.05, 0.6)
        prefill = h.partial if wl.sdk else None
        fb: dict[str, Any] = {"trigger": "refusal", "prefill": prefill}
        if wl.sdk:
            fb["disclosed"] = rng.random() < 0.7
        if fate == "redeemed":
            self.call(c, OPUS, gap=quick, present=tok, status={"type": "redeemed"}, read=h.cache_total, **fb)
        elif fate == "redeemed_after_error":
            self.call(c, OPUS, "error", err="529", gap=quick, present=tok, **fb)
            fb["trigger"] = "overloaded"
            self.call(
                c, OPUS, gap=rng.uniform(1, 8), present=tok, status={"type": "redeemed"}, read=h.cache_total, **fb
            )
        elif fate == "rejected":
            status = {"type": "not_applied", "reason": rng.choice(NOT_APPLIED)}
            self.call(c, OPUS, gap=quick, present=tok, status=status, **fb)
        elif fate == "unconfirmed":
            self.call(c, OPUS, gap=quick, present=tok, **fb)
        elif fate == "forfeited":
            self.call(c, OPUS, gap=rng.uniform(20, 200), **fb)
        elif fate == "forfeited_failed":
            self.call(c, OPUS, "error", err="529", gap=quick, present=tok, **fb)
            fb["trigger"] = "overloaded"
            self.call(c, OPUS, gap=rng.uniform(5, 60), **fb)
        elif fate == "expired_late":  # retried after 6-9 minutes: still the same chain (< 10 min, §4)
            self.call(c, OPUS, gap=rng.uniform(360, 540), **fb)
        elif fate == "no_token":
            self.call(c, OPUS, gap=quick, **fb)
        # "expired": the user gave up
        if wl.sdk and fate != "expired" and rng.random() < 0.5:
            c.intended = FABLE  # the SDK's fallback state pins this session's next turns (§8)

    def error_chain(self, c: Ctx, model: str) -> None:
        """An API or transport error, then reliability retries (same or another model) or giving up."""
        rng = self.rng
        err = self.draw("error", ERROR_BAG)
        trigger: str | None = None
        for k in range(3):
            cls = ERRORS[err][0]
            self.call(c, model, "error", err=err, trigger=trigger)
            if cls not in RETRYABLE:
                return  # not retryable: the chain stays unresolved
            trigger = cls
            c.t += int((rng.uniform(5, 60) if cls == "rate_limit" else rng.uniform(0.5, 10)) * 1000)
            if cls != "conflict" and not c.wl.fallbacks and rng.random() < 0.35:
                model = ALT[model]
            if k < 2 and rng.random() < 0.2:
                err = self.draw("retry_error", ["429", "529", "503", "conn", "t/o"])
                continue
            if c.wl.fallbacks:
                self.server_call(c)
            else:
                self.call(c, model, trigger=trigger)
            return

    def run(self, c: Ctx, scenario: str) -> None:
        rng, start = self.rng, c.wl.start
        if c.intended:  # pinned to the fallback model: the SDK skips the intended one
            start = OPUS
        if scenario == "refusal":
            self.refusal_chain(c)
        elif scenario == "error":
            self.error_chain(c, start)
        elif scenario == "stream_error":
            c.stream = True
            self.call(c, start, "stream_error")
            self.call(c, start, gap=rng.uniform(1, 10), trigger="overloaded")
        elif scenario == "server":
            self.server_call(c)
        elif scenario == "quality":  # cost tiers: the app's check rejects an answer and escalates
            self.call(c, HAIKU, accepted=False)
            if rng.random() < 0.65:
                self.call(c, SONNET, gap=rng.uniform(0.2, 3), trigger="quality")
            else:
                self.call(c, SONNET, gap=rng.uniform(0.2, 3), trigger="quality", accepted=False)
                self.call(c, OPUS, gap=rng.uniform(0.2, 3), trigger="quality", accepted=rng.random() < 0.9)
        else:
            self.call(c, start, disclosed=(rng.random() < 0.7) if c.intended else None)

    # -- traffic ---------------------------------------------------------------------------------------
    def session(self, wl: Workload, day: int, t: int, n: int, boost: float, scenario: str | None = None) -> None:
        """Plant one session of n chains (or n chains of their own when the workload has no session); each
        chain's scenario drawn by the workload's weights, or `scenario` when given."""
        rng = self.rng
        sid = self.uid("sess_", 16) if wl.session else None
        user = f"user_{''.join(rng.choices(string.hexdigits.lower()[:16], k=16))}"
        system: Any = self.systems[wl.name]
        if wl.cache_ttl:
            control = {"type": "ephemeral"} | ({"ttl": "1h"} if wl.cache_ttl == "1h" else {})
            system = [{"type": "text", "text": system, "cache_control": control}]
        history: list[dict[str, Any]] = []
        surface = rng.choices(["anthropic", "bedrock", "vertex"], [6, 2, 2])[0] if wl.legacy_usage else "anthropic"
        geo = ("us" if rng.random() < 0.5 else "global") if wl.tools == "web" else None
        intended = None
        for _ in range(n):
            chain = Chain(wl.name, sid or f"~{len(self.chains)}")
            weights = {k: v * (boost if k == "refusal" else 1) for k, v in SCENARIOS[wl.name].items()}
            if intended:
                weights = {k: v for k, v in weights.items() if k in ("ok", "error")}
            chosen = scenario or rng.choices(list(weights), list(weights.values()))[0]
            messages = history + [{"role": "user", "content": self.text(*self.prompt_words)}]
            if chosen == "reask":  # the same document again, after an earlier chain: a new chain
                earlier = [m for d, m in self.reask if d < day]
                messages, chosen = (rng.choice(earlier) if earlier else messages), "ok"
            elif wl.name == "doc-summarise":
                self.reask.append((day, messages))
            sys_tokens = len(self.systems[wl.name]) // 4 + (300 if wl.tools else 0)
            hist_tokens = sum(len(m["content"]) // 4 for m in history)
            chain_id = self.uid("ch_", 16) if wl.chain_id else None
            prompt_tokens = sys_tokens + hist_tokens + len(messages[-1]["content"]) // 4
            cacheable = (sys_tokens + hist_tokens) if wl.cache_ttl else 0
            c = Ctx(wl, chain, t, sid, chain_id, user, system, messages, prompt_tokens, cacheable)
            c.surface, c.geo, c.intended, c.stream, c.boost = surface, geo, intended, rng.random() < wl.stream, boost
            self.run(c, chosen)
            intended = c.intended
            self.chains.append(chain)
            history = messages + [{"role": "assistant", "content": self.text(20, 80)}]
            t = c.t + rng.randint(60_000, 720_000)

    def batch(self, ts: int, n: int) -> tuple[str, list[dict[str, Any]]]:
        """Plant a Message Batches results file: one chain per result, all at `ts` (the --default-ts)."""
        rng = self.rng
        bid = self.uid("msgbatch_")
        kinds = ["errored", "errored", "canceled", "canceled", "expired", "expired", "refusal+credit", "refusal"]
        kinds += ["succeeded"] * max(0, n - len(kinds))
        rng.shuffle(kinds)
        wl = BY_NAME[BATCH_WORKLOAD]
        rows = []
        for i, kind in enumerate(kinds):
            chain = Chain(BATCH_WORKLOAD, f"~batch{i}")
            model = FABLE if kind.startswith("refusal") else rng.choice([HAIKU, SONNET])
            hop = Hop(ts, model, batch=True, http_2xx=kind != "errored")
            c = Ctx(wl, chain, ts, None, None, "", "", [], rng.randint(300, 900), 0)
            result: dict[str, Any] = {"type": kind.split("+")[0]}
            if kind.startswith("refusal"):
                hop.outcome, hop.category = "refusal", self.category(wl)
                details = self.refusal_details(hop, kind == "refusal+credit", False)
                usage, _ = self.usage(c, 0, tier="batch")
                result = {"type": "succeeded", "message": self.message(FABLE, [], "refusal", usage, details)}
            elif kind == "succeeded":
                content, stop = self.content(c, model)
                usage, _ = self.usage(c, len(content[-1].get("text", "")) // 4, tier="batch")
                result["message"] = self.message(DATED[model], content, stop, usage)
            elif kind == "errored":
                etype = rng.choice(["invalid_request_error", "overloaded_error"])
                hop.model, hop.outcome = None, "error"
                hop.error_class = "invalid_request" if etype == "invalid_request_error" else "overloaded"
                result["error"] = {
                    "type": "error",
                    "error": {"type": etype, "message": "Request failed."},
                    "request_id": self.uid("req_"),
                }
            else:
                hop.model, hop.outcome = None, kind
            chain.hops.append(hop)
            self.chains.append(chain)
            rows.append({"custom_id": f"extract-{i + 1:04d}", "result": result})
        return bid, rows

