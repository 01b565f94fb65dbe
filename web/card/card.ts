// <vitals-customer-card>: one customer's evaluation for a CRM page, in a few lines of HTML.
//
//   <script type="module" src="https://vitals.example.com/card.js"></script>
//   <vitals-customer-card endpoint="https://vitals.example.com" api-key="vk_..."
//                         external-id="7590-VHVEG" lang="en"></vitals-customer-card>
//
// It shows the churn probability with its band and horizon, the reasons raising and
// lowering it in words, the lifetime value, the tier and scorecard, the segment, the
// lifecycle stage and the open follow-ups. Its styles live in a shadow root, so the host
// page's CSS neither leaks in nor is disturbed. The server answers it across origins
// (gRPC-Web with CORS); give it a reader key, or a pii-reader key to show names.

// Only the two services the card calls, so the bundle carries no other descriptors.
import { createClient } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { type Evaluation, EvaluationService, type Factor } from "../client/gen/vitals/v1/evaluation_pb.js";
import { type FollowUp, FollowUpService, FollowUpStatus } from "../client/gen/vitals/v1/followup_pb.js";
import { problem } from "../client/problem.js";

const STYLE = `
:host { display: block; font: 14px/1.4 system-ui, sans-serif; color: #1d2330; max-width: 28rem; }
.card { border: 1px solid #d6dbe4; border-radius: 8px; padding: 12px 14px; background: #fff; }
h2 { font-size: 15px; margin: 0 0 4px; }
.meta { color: #4a5468; margin: 0 0 8px; }
.risk { font-size: 26px; font-weight: 600; margin: 4px 0; }
.risk small { font-size: 13px; font-weight: 400; color: #4a5468; }
.high { color: #a4161a; } .medium { color: #8a5a00; } .low { color: #1b6e3a; }
h3 { font-size: 13px; margin: 10px 0 2px; color: #4a5468; }
ul { margin: 0; padding-left: 18px; }
dl { display: grid; grid-template-columns: auto 1fr; gap: 2px 10px; margin: 6px 0 0; }
dt { color: #4a5468; } dd { margin: 0; }
.error { color: #a4161a; }
`;

const WORDS = {
  en: {
    within: "chance of leaving within {days} days",
    raising: "Raising the risk",
    lowering: "Lowering the risk",
    value: "Lifetime value",
    alive: "still buying with probability {p}",
    tier: "Tier",
    segment: "Segment",
    stage: "Stage",
    followUps: "Open follow-ups",
    none: "none",
    absent: "No churn risk",
    loading: "Loading…",
  },
  "zh-CN": {
    within: "{days} 天内流失的概率",
    raising: "推高风险",
    lowering: "降低风险",
    value: "生命周期价值",
    alive: "仍在购买的概率 {p}",
    tier: "等级",
    segment: "客户分群",
    stage: "阶段",
    followUps: "未完成的跟进",
    none: "无",
    absent: "无流失风险评估",
    loading: "加载中…",
  },
} as const;

type Words = Record<keyof (typeof WORDS)["en"], string>;

function escape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function money(value: number | undefined, currency: string, lang: string): string {
  if (value === undefined || !Number.isFinite(value)) return "–";
  return currency
    ? new Intl.NumberFormat(lang, { style: "currency", currency }).format(value)
    : value.toFixed(2);
}

function reasons(title: string, factors: Factor[]): string {
  if (factors.length === 0) return "";
  const items = factors
    .slice(0, 3)
    .map((f) => `<li>${escape(f.displayValue ? `${f.label}: ${f.displayValue}` : f.label)}</li>`)
    .join("");
  return `<h3>${escape(title)}</h3><ul>${items}</ul>`;
}

export function render(e: Evaluation, tasks: FollowUp[], lang: string): string {
  const w: Words = lang.startsWith("zh") ? WORDS["zh-CN"] : WORDS.en;
  const churn = e.churn;
  const risk =
    churn && !churn.absentReason
      ? `<p class="risk ${escape(churn.riskBand)}" part="risk">${(churn.probability * 100).toFixed(1)}% <small>${escape(
          w.within.replace("{days}", String(Math.round(churn.horizonDays))),
        )}</small></p>${reasons(w.raising, churn.raising)}${reasons(w.lowering, churn.lowering)}`
      : `<p class="meta">${escape(w.absent)}: ${escape(churn?.absentReason ?? "")}</p>`;
  const open = tasks.filter((t) =>
    [FollowUpStatus.OPEN, FollowUpStatus.ASSIGNED, FollowUpStatus.IN_PROGRESS].includes(t.status),
  );
  const card = e.scorecard;
  const dims = card && !card.absentReason
    ? card.dimensions.map((d) => `${d.dimension} ${d.inputsUsed ? Math.round(d.score) : "–"}`).join(" · ")
    : "";
  const lifetime = e.lifetimeValue;
  return `<div class="card" part="card">
<h2>${escape(e.displayName || e.externalId)}</h2>
${e.displayName && e.displayName !== e.externalId ? `<p class="meta">${escape(e.externalId)}</p>` : ""}
${risk}
<dl>
<dt>${escape(w.value)}</dt><dd>${lifetime && !lifetime.absentReason ? escape(money(lifetime.lifetimeValue, e.currency, lang)) : "–"}${
    lifetime && !lifetime.absentReason && lifetime.method !== "subscription"
      ? `<br><small>${escape(w.alive.replace("{p}", `${(lifetime.probabilityAlive * 100).toFixed(0)}%`))}</small>`
      : ""
  }</dd>
<dt>${escape(w.tier)}</dt><dd>${escape(card?.tier ?? "–")}${dims ? `<br><small>${escape(dims)}</small>` : ""}</dd>
<dt>${escape(w.segment)}</dt><dd>${escape(e.segment?.name || "–")}</dd>
<dt>${escape(w.stage)}</dt><dd>${escape(e.lifecycleStage.replace(/_/g, " "))}</dd>
<dt>${escape(w.followUps)}</dt><dd>${open.length ? open.map((t) => escape(`${t.department}: ${t.detail}`)).join("<br>") : escape(w.none)}</dd>
</dl>
</div>`;
}

export class VitalsCustomerCard extends HTMLElement {
  static observedAttributes = ["external-id", "endpoint", "api-key", "lang"];
  #root = this.attachShadow({ mode: "open" });
  #loading = 0;

  connectedCallback(): void {
    void this.#load();
  }

  attributeChangedCallback(): void {
    if (this.isConnected) void this.#load();
  }

  async #load(): Promise<void> {
    const externalId = this.getAttribute("external-id");
    const endpoint = this.getAttribute("endpoint") ?? location.origin;
    const lang = this.getAttribute("lang") || document.documentElement.lang || "en";
    if (!externalId) return;
    const ticket = ++this.#loading;
    const w: Words = lang.startsWith("zh") ? WORDS["zh-CN"] : WORDS.en;
    this.#root.innerHTML = `<style>${STYLE}</style><div class="card">${escape(w.loading)}</div>`;
    const apiKey = this.getAttribute("api-key");
    const transport = createGrpcWebTransport({
      baseUrl: endpoint.replace(/\/+$/, ""),
      interceptors: [
        (next) => async (request) => {
          if (apiKey) request.header.set("authorization", `Bearer ${apiKey}`);
          // The server writes reasons, segments and sentences in the card's language.
          request.header.set("accept-language", lang.startsWith("zh") ? "zh-CN" : "en");
          return next(request);
        },
      ],
    });
    const vitals = {
      evaluations: createClient(EvaluationService, transport),
      followUps: createClient(FollowUpService, transport),
    };
    try {
      const e = await vitals.evaluations.evaluateCustomer({
        lookup: { case: "externalId", value: externalId },
      });
      const tasks = await vitals.followUps.listFollowUps({ customerId: e.customerId, pageSize: 20 });
      if (ticket !== this.#loading) return; // a newer customer was asked for meanwhile
      this.#root.innerHTML = `<style>${STYLE}</style>${render(e, tasks.followUps, lang)}`;
      this.dispatchEvent(new CustomEvent("vitals-loaded", { detail: { probability: e.churn?.probability } }));
    } catch (error) {
      if (ticket !== this.#loading) return;
      this.#root.innerHTML = `<style>${STYLE}</style><div class="card error" role="alert">${escape(problem(error).message)}</div>`;
    }
  }
}

if (!customElements.get("vitals-customer-card")) {
  customElements.define("vitals-customer-card", VitalsCustomerCard);
}
