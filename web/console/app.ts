// The Vitals console: served by vitals-server itself at `/`, talking gRPC-Web to the same
// origin. Pages by hash route: #/at-risk, #/win-back, #/customer/<external id>,
// #/follow-ups. Plain DOM, no framework: the whole console stays a small download.

import { timestampDate, timestampFromDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import {
  AtRiskOrder,
  type Evaluation,
  type Event,
  EventKind,
  type Factor,
  type FollowUp,
  FollowUpReason,
  FollowUpStatus,
  Granularity,
  Grouping,
  createVitals,
  problem,
  type Vitals,
} from "../client/index.js";
import { isKey, type Key, type Lang, lang, setLang, t } from "./i18n.js";

const KEY_STORE = "vitals.apiKey";
const LANG_STORE = "vitals.lang";
const PAGE = 25;

/** What the signed-in key may do, from the server's answers; nothing until one arrives. */
let roles = new Set<string>();
let vitals: Vitals = connect();

function connect(): Vitals {
  const apiKey = sessionStorage.getItem(KEY_STORE) ?? undefined;
  roles = new Set();
  return createVitals({
    endpoint: location.origin,
    apiKey,
    actor: "console",
    // The server's words (reasons, segments, sentences) in the page's language.
    language: () => lang(),
    onRoles: (r) => {
      roles = new Set(r);
    },
  });
}

/** Whether to offer what needs `role` (the server decides anyway). */
function may(role: "writer" | "admin"): boolean {
  return roles.has(role);
}

// ---- DOM helpers -------------------------------------------------------------------

type Child = Node | string | null | undefined | false;

function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | ((e: globalThis.Event) => void)> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (typeof value === "function") el.addEventListener(name, value);
    else el.setAttribute(name, value);
  }
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.append(typeof c === "string" ? document.createTextNode(c) : c);
  }
  return el;
}

function main(): HTMLElement {
  const el = document.getElementById("main");
  if (!el) throw new Error("the page has no #main");
  return el;
}

function show(...children: Child[]): void {
  main().replaceChildren(...children.filter((c): c is Node | string => !!c));
}

function errorBox(error: unknown): HTMLElement {
  const p = problem(error);
  if (p.refused && !sessionStorage.getItem(KEY_STORE)) {
    // Not signed in, and the server wants a key: ask for one.
    location.hash = "#/sign-in";
  }
  return h("p", { class: "error", role: "alert" }, `${t("error")}: ${p.message}`);
}

// ---- Formatting --------------------------------------------------------------------

function money(value: number | undefined, currency: string): string {
  if (value === undefined || !Number.isFinite(value)) return "–";
  if (!currency) return value.toLocaleString(lang(), { maximumFractionDigits: 2 });
  return new Intl.NumberFormat(lang(), { style: "currency", currency }).format(value);
}

function percent(p: number): string {
  return new Intl.NumberFormat(lang(), {
    style: "percent",
    minimumFractionDigits: 1,
    maximumFractionDigits: 1,
  }).format(p);
}

function when(ts: Timestamp | undefined): string {
  if (!ts) return "";
  return timestampDate(ts).toLocaleString(lang(), { dateStyle: "medium", timeStyle: "short" });
}

function name(e: { displayName: string; externalId: string }): string {
  return e.displayName && e.displayName !== e.externalId
    ? `${e.displayName} (${e.externalId})`
    : e.externalId;
}

// Codes the API answers with, in the page's words (anything newer than this console
// shows as the API spells it).
function coded(prefix: string, code: string): string {
  const key = `${prefix}.${code}`;
  return isKey(key) ? t(key) : code.replace(/_/g, " ");
}

function stageLabel(stage: string): string {
  return coded("stage", stage);
}

function statusLabel(status: FollowUpStatus): string {
  return coded("status", FollowUpStatus[status]);
}

function reason(f: Factor): string {
  return f.displayValue ? `${f.label}: ${f.displayValue}` : f.label || f.feature;
}

function customerLink(e: { displayName: string; externalId: string }): HTMLElement {
  return h("a", { href: `#/customer/${encodeURIComponent(e.externalId)}` }, name(e));
}

// ---- Sign in -----------------------------------------------------------------------

function signIn(): void {
  const input = h("input", { id: "api-key", type: "password", autocomplete: "off" });
  const message = h("p", { class: "error", role: "alert" });
  const form = h(
    "form",
    {
      class: "card narrow",
      submit: async (e) => {
        e.preventDefault();
        sessionStorage.setItem(KEY_STORE, input.value.trim());
        vitals = connect();
        try {
          // Any read tells whether the key is good.
          await vitals.evaluations.listAtRisk({ pageSize: 1 });
          location.hash = "#/at-risk";
        } catch (error) {
          sessionStorage.removeItem(KEY_STORE);
          message.textContent = problem(error).refused ? t("signIn.refused") : problem(error).message;
        }
      },
    },
    h("h1", {}, t("signIn.heading")),
    h("label", { for: "api-key" }, t("signIn.key")),
    input,
    h("p", { class: "hint" }, t("signIn.hint")),
    h("button", { type: "submit" }, t("signIn.submit")),
    message,
  );
  show(form);
}

// ---- At risk and win back ----------------------------------------------------------

async function atRisk(order: AtRiskOrder): Promise<void> {
  const byProbability = order !== AtRiskOrder.EXPECTED_LOSS;
  const switcher = h(
    "div",
    { class: "tabs", role: "group" },
    h(
      "a",
      { href: "#/at-risk", "aria-current": byProbability ? "page" : "false" },
      t("atRisk.byProbability"),
    ),
    h(
      "a",
      { href: "#/at-risk/loss", "aria-current": byProbability ? "false" : "page" },
      t("atRisk.byLoss"),
    ),
  );
  const body = h("tbody");
  const table = h(
    "table",
    { id: "at-risk" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, t("col.customer")),
        h("th", { scope: "col", class: "num" }, t("col.risk")),
        h("th", { scope: "col", class: "num" }, t("col.value")),
        h("th", { scope: "col", class: "num" }, t("col.loss")),
        h("th", { scope: "col" }, t("col.stage")),
        h("th", { scope: "col" }, t("col.reason")),
      ),
    ),
    body,
  );
  const more = h("button", { type: "button", class: "more" }, t("more"));
  const empty = h("p", { class: "note", hidden: "" }, t("atRisk.empty"));
  // Filters the API applies (the list pages through the server, never loaded whole).
  const segment = h("select", { id: "filter-segment" }, h("option", { value: "" }, t("all")));
  const tier = h(
    "select",
    { id: "filter-tier" },
    h("option", { value: "" }, t("all")),
    ...["platinum", "gold", "silver", "bronze"].map((x) => h("option", { value: x }, x)),
  );
  const band = h(
    "select",
    { id: "filter-band" },
    h("option", { value: "" }, t("all")),
    h("option", { value: "0.5" }, t("band.high")),
    h("option", { value: "0.25" }, t("band.mediumUp")),
  );
  const stage = h(
    "select",
    { id: "filter-stage" },
    h("option", { value: "" }, t("all")),
    ...["new", "active", "at_risk", "won_back"].map((x) => h("option", { value: x }, stageLabel(x))),
  );
  void vitals.evaluations
    .listSegments({})
    .then((r) => {
      for (const s of r.segments) {
        segment.append(
          h("option", { value: String(s.segmentId) }, s.population ? `${s.name} (${s.population})` : s.name),
        );
      }
    })
    .catch(() => undefined);
  show(
    h("h1", {}, t("atRisk.heading")),
    h("p", { class: "note" }, t("atRisk.note")),
    switcher,
    h(
      "div",
      { class: "filters" },
      h("label", { for: "filter-segment" }, t("col.segment")),
      segment,
      h("label", { for: "filter-tier" }, t("customer.tier")),
      tier,
      h("label", { for: "filter-band" }, t("col.risk")),
      band,
      h("label", { for: "filter-stage" }, t("col.stage")),
      stage,
    ),
    table,
    empty,
    more,
  );
  let token = "";
  const load = async (): Promise<void> => {
    more.disabled = true;
    try {
      const page = await vitals.evaluations.listAtRisk({
        pageSize: PAGE,
        pageToken: token,
        orderBy: order,
        segmentId: segment.value === "" ? undefined : Number(segment.value),
        tier: tier.value,
        minProbability: band.value === "" ? undefined : Number(band.value),
        lifecycleStage: stage.value,
      });
      if (token === "") empty.hidden = page.evaluations.length > 0;
      for (const e of page.evaluations) body.append(atRiskRow(e));
      token = page.nextPageToken;
      more.hidden = token === "";
    } catch (error) {
      main().append(errorBox(error));
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener("click", () => void load());
  for (const filter of [segment, tier, band, stage]) {
    filter.addEventListener("change", () => {
      token = "";
      body.replaceChildren();
      void load();
    });
  }
  await load();
}

function atRiskRow(e: Evaluation): HTMLElement {
  const churn = e.churn;
  const p = churn?.probability ?? 0;
  const top = churn?.raising[0];
  return h(
    "tr",
    {},
    h("td", {}, customerLink(e)),
    h("td", { class: `num band-${churn?.riskBand ?? ""}` }, percent(p)),
    h("td", { class: "num" }, money(e.value, e.currency)),
    h("td", { class: "num" }, money(e.value * p, e.currency)),
    h("td", {}, stageLabel(e.lifecycleStage)),
    h("td", {}, top ? reason(top) : ""),
  );
}

async function winBack(): Promise<void> {
  const body = h("tbody");
  const table = h(
    "table",
    { id: "win-back" },
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, t("col.customer")),
        h("th", { scope: "col", class: "num" }, t("col.lost")),
        h("th", { scope: "col" }, t("col.stage")),
        h("th", { scope: "col" }, t("col.why")),
      ),
    ),
    body,
  );
  const more = h("button", { type: "button", class: "more" }, t("more"));
  show(h("h1", {}, t("winBack.heading")), h("p", { class: "note" }, t("winBack.note")), table, more);
  let token = "";
  const load = async (): Promise<void> => {
    try {
      const page = await vitals.evaluations.listWinBack({ pageSize: PAGE, pageToken: token });
      if (token === "" && page.evaluations.length === 0) {
        table.replaceWith(h("p", { class: "note" }, t("winBack.empty")));
      }
      for (const e of page.evaluations) {
        body.append(
          h(
            "tr",
            {},
            h("td", {}, customerLink(e)),
            h("td", { class: "num" }, money(e.valueLost, e.currency)),
            h("td", {}, stageLabel(e.lifecycleStage)),
            h("td", {}, (e.churn?.absentReason ?? "").split(";")[0] ?? ""),
          ),
        );
      }
      token = page.nextPageToken;
      more.hidden = token === "";
    } catch (error) {
      main().append(errorBox(error));
    }
  };
  more.addEventListener("click", () => void load());
  await load();
}

// ---- Customer ----------------------------------------------------------------------

function factorBars(title: string, factors: Factor[], largest: number, kind: string): HTMLElement {
  return h(
    "section",
    { class: `factors ${kind}` },
    h("h3", {}, title),
    h(
      "ul",
      {},
      ...factors.map((f) =>
        h(
          "li",
          {},
          h("span", { class: "label" }, reason(f)),
          h(
            "span",
            { class: "bar", "aria-hidden": "true" },
            h("span", {
              style: `width:${Math.round((Math.abs(f.contribution) / largest) * 100)}%`,
            }),
          ),
        ),
      ),
    ),
  );
}

function part(title: Key, absent: string | undefined, ...content: Child[]): HTMLElement {
  return h(
    "section",
    { class: "card" },
    h("h2", {}, t(title)),
    absent ? h("p", { class: "note" }, `${t("customer.absent")}: ${absent}`) : null,
    ...(absent ? [] : content),
  );
}

async function customer(externalId: string): Promise<void> {
  show(h("p", {}, t("loading")));
  try {
    const e = await vitals.evaluations.evaluateCustomer({
      lookup: { case: "externalId", value: externalId },
    });
    const [events, tasks] = await Promise.all([
      vitals.events.listCustomerEvents({
        customer: { case: "customerId", value: e.customerId },
        pageSize: 50,
      }),
      vitals.followUps.listFollowUps({ customerId: e.customerId, pageSize: 50 }),
    ]);
    const churn = e.churn;
    const factors = [...(churn?.raising ?? []), ...(churn?.lowering ?? [])];
    const largest = Math.max(1e-9, ...factors.map((f) => Math.abs(f.contribution)));
    const lifetime = e.lifetimeValue;
    const card = e.scorecard;
    show(
      h("p", {}, h("a", { href: "#/at-risk" }, `← ${t("customer.back")}`)),
      h("h1", { id: "customer-name" }, name(e)),
      h("p", { class: "stage" }, `${t("customer.stage")}: ${stageLabel(e.lifecycleStage)}`),
      h(
        "div",
        { class: "grid" },
        part(
          "customer.risk",
          churn?.absentReason,
          h(
            "p",
            { class: `big band-${churn?.riskBand ?? ""}`, id: "churn-probability" },
            percent(churn?.probability ?? 0),
            " ",
            h("small", {}, t("customer.within", { days: Math.round(churn?.horizonDays ?? 0) })),
          ),
          factorBars(t("customer.raising"), churn?.raising ?? [], largest, "up"),
          factorBars(t("customer.lowering"), churn?.lowering ?? [], largest, "down"),
        ),
        part(
          "customer.value",
          lifetime?.absentReason,
          h("p", { class: "big" }, money(lifetime?.lifetimeValue, e.currency)),
          h("p", { class: "note" }, lifetime?.basis ?? ""),
        ),
        part(
          "customer.segment",
          e.segment?.absentReason,
          h("p", {}, h("strong", {}, e.segment?.name ?? "")),
          h("ul", {}, ...(e.segment?.traits ?? []).map((x) => h("li", {}, x))),
        ),
        part(
          "customer.scorecard",
          card?.absentReason,
          h(
            "table",
            {},
            h(
              "tbody",
              {},
              ...(card?.dimensions ?? []).map((d) =>
                h(
                  "tr",
                  {},
                  h("th", { scope: "row" }, coded("dimension", d.dimension)),
                  h(
                    "td",
                    { class: "num" },
                    d.inputsUsed === 0 ? t("customer.noData") : Math.round(d.score).toString(),
                  ),
                ),
              ),
            ),
          ),
          h("p", {}, `${Math.round(card?.composite ?? 0)} · ${t("customer.tier")} ${card?.tier ?? ""}`),
        ),
        part(
          "customer.rfm",
          e.rfm?.absentReason,
          h("p", {}, `R${e.rfm?.rScore} F${e.rfm?.fScore} M${e.rfm?.mScore}: ${e.rfm?.segment ?? ""}`),
        ),
      ),
      churn && !churn.absentReason ? whatIf(e, factors) : null,
      may("writer") ? actionForm(e) : null,
      h("h2", {}, t("customer.followUps")),
      tasks.followUps.length === 0
        ? h("p", { class: "note" }, t("customer.noFollowUps"))
        : h("ul", { class: "tasks" }, ...tasks.followUps.map(taskItem)),
      h("h2", {}, t("customer.timeline")),
      timeline(e.customerId, events),
    );
  } catch (error) {
    show(errorBox(error));
  }
}

/**
 * The customer's events, newest first, a page at a time, filtered by kind by the server
 * (ListCustomerEvents), starting from the first page already loaded.
 */
function timeline(customerId: string, first: { events: Event[]; nextPageToken: string }): HTMLElement {
  const list = h("ol", { class: "timeline", id: "timeline" }, ...first.events.map(eventItem));
  const more = h("button", { type: "button", class: "more" }, t("more"));
  more.hidden = first.nextPageToken === "";
  let token = first.nextPageToken;
  const kinds: [string, Key][] = [
    ["", "all"],
    [String(EventKind.TRANSACTION), "timeline.purchases"],
    [String(EventKind.PAYMENT), "timeline.payments"],
    [String(EventKind.FEEDBACK), "timeline.feedback"],
    [String(EventKind.INTERACTION), "timeline.contacts"],
    [String(EventKind.RETENTION_ACTION), "timeline.actions"],
  ];
  const kind = h("select", { id: "timeline-kind" }, ...kinds.map(([v, k]) => h("option", { value: v }, t(k))));
  const load = async (reset: boolean): Promise<void> => {
    if (reset) {
      token = "";
      list.replaceChildren();
    }
    const page = await vitals.events.listCustomerEvents({
      customer: { case: "customerId", value: customerId },
      pageSize: 50,
      pageToken: token,
      kinds: kind.value ? [Number(kind.value)] : [],
    });
    list.append(...page.events.map(eventItem));
    token = page.nextPageToken;
    more.hidden = token === "";
  };
  kind.addEventListener("change", () => void load(true).catch((error) => list.replaceChildren(errorBox(error))));
  more.addEventListener("click", () => void load(false).catch((error) => list.append(errorBox(error))));
  return h(
    "div",
    {},
    h("div", { class: "filters" }, h("label", { for: "timeline-kind" }, t("timeline.kind")), kind),
    list,
    more,
  );
}

/**
 * What if: the customer's own features now, with the ones changed here overriding them,
 * scored by their population's model (ScoreFeatures with the customer's external id).
 */
function whatIf(e: Evaluation, factors: Factor[]): HTMLElement {
  // The behavioural features among the reasons, with the customer's numbers.
  const editable = factors.filter((f) => !f.feature.startsWith("attr.") && f.value !== undefined);
  const inputs = editable.map((f, i) => ({
    feature: f.feature,
    original: f.value ?? 0,
    input: h("input", { id: `what-if-${i}`, type: "number", step: "any", value: String(Number((f.value ?? 0).toFixed(2))) }),
    label: f.label,
  }));
  const result = h("p", { id: "what-if-result", role: "status" });
  return h(
    "form",
    {
      class: "card",
      id: "what-if",
      submit: async (event) => {
        event.preventDefault();
        const features: Record<string, number> = {};
        for (const x of inputs) {
          const v = Number(x.input.value);
          if (Number.isFinite(v) && Math.abs(v - Number(x.original.toFixed(2))) > 1e-9) features[x.feature] = v;
        }
        try {
          const r = await vitals.evaluations.scoreFeatures({ customerExternalId: e.externalId, features });
          result.textContent = t("whatIf.result", {
            p: percent(r.churnProbability),
            now: percent(e.churn?.probability ?? 0),
          });
        } catch (error) {
          result.textContent = problem(error).message;
        }
      },
    },
    h("h2", {}, t("whatIf.heading")),
    h("p", { class: "note" }, t("whatIf.note")),
    h("div", { class: "scheme-grid" }, ...inputs.flatMap((x) => [h("label", { for: x.input.id }, x.label), x.input, h("span", {})])),
    h("button", { type: "submit" }, t("whatIf.score")),
    result,
  );
}

/** Records what was done to keep this customer (RecordRetentionAction). */
function actionForm(e: Evaluation): HTMLElement {
  const kind = h("input", { id: "action-kind", value: "call", required: "" });
  const channel = h(
    "select",
    { id: "action-channel" },
    ...["phone", "email", "visit", "chat"].map((c) => h("option", { value: c }, c)),
  );
  const cost = h("input", { id: "action-cost", type: "number", min: "0", step: "0.01", value: "0" });
  const note = h("input", { id: "action-note" });
  const message = h("p", { class: "error", role: "alert" });
  const currency = e.currency || "USD";
  return h(
    "form",
    {
      class: "card",
      id: "record-action",
      submit: async (event) => {
        event.preventDefault();
        message.replaceChildren();
        try {
          await vitals.followUps.recordRetentionAction({
            // One key per submission: a retry of the same request is recognised as such.
            eventKey: `console-${crypto.randomUUID()}`,
            customer: { case: "customerId", value: e.customerId },
            time: timestampFromDate(new Date()),
            action: {
              kind: kind.value.trim(),
              channel: channel.value,
              costMinor: BigInt(Math.round(Number(cost.value || "0") * 100)),
              currency: Number(cost.value || "0") > 0 ? currency : "",
              note: note.value.trim(),
              actor: "console",
            },
          });
          await customer(e.externalId);
        } catch (error) {
          message.textContent = problem(error).message;
        }
      },
    },
    h("h2", {}, t("action.heading")),
    h(
      "div",
      { class: "filters" },
      h("label", { for: "action-kind" }, t("action.kind")),
      kind,
      h("label", { for: "action-channel" }, t("action.channel")),
      channel,
      h("label", { for: "action-cost" }, t("action.cost", { currency })),
      cost,
      h("label", { for: "action-note" }, t("action.note")),
      note,
      h("button", { type: "submit" }, t("action.record")),
    ),
    message,
  );
}

function eventItem(e: Event): HTMLElement {
  const p = e.payload;
  let text: string;
  switch (p.case) {
    case "transaction":
      text = `${coded("event", p.case)}: ${money(Number(p.value.amountMinor) / 100, p.value.currency)} ${p.value.category}`;
      break;
    case "payment":
      text = `${coded("event", p.case)}: ${money(Number(p.value.amountMinor) / 100, p.value.currency)}`;
      break;
    case "feedback":
      text = `${coded("event", p.case)}: ${p.value.score ?? t("comment.noScore")}${p.value.comment ? ` “${p.value.comment}”` : ""}`;
      break;
    case "interaction":
      text = `${coded("event", p.case)}: ${p.value.category} (${p.value.channel})${p.value.note ? ` “${p.value.note}”` : ""}`;
      break;
    case "retentionAction":
      text = `${coded("event", p.case)}: ${p.value.kind} ${p.value.campaign}`;
      break;
    default:
      text = "";
  }
  const a = e.commentAnalysis;
  if (!a) return h("li", {}, h("time", {}, when(e.time)), " ", text);
  // What the words say, as the text model in service read them on arrival.
  const topic = a.topics[0]?.name;
  const reading = `${t("comment.sentiment")} ${a.sentiment >= 0 ? "+" : "−"}${Math.abs(a.sentiment).toFixed(2)}${topic ? ` · ${t("comment.topic")}: ${topic}` : ""}`;
  return h(
    "li",
    {},
    h("time", {}, when(e.time)),
    " ",
    text,
    " ",
    h(
      "span",
      { class: a.sentiment <= -0.3 ? "analysis negative" : "analysis", title: t("comment.scale"), lang: a.language },
      reading,
    ),
  );
}

function taskItem(f: FollowUp): HTMLElement {
  return h(
    "li",
    {},
    h("strong", {}, coded("reason", FollowUpReason[f.reason])),
    ` · ${f.department} · ${statusLabel(f.status)} · ${f.detail}`,
    f.overdue ? h("span", { class: "overdue" }, ` · ${t("followUps.overdue")}`) : null,
  );
}

// ---- Follow-ups --------------------------------------------------------------------

async function followUps(): Promise<void> {
  const status = h(
    "select",
    { id: "status" },
    h("option", { value: "" }, t("all")),
    ...[FollowUpStatus.OPEN, FollowUpStatus.ASSIGNED, FollowUpStatus.IN_PROGRESS].map((s) =>
      h("option", { value: String(s) }, statusLabel(s)),
    ),
  );
  const department = h("input", { id: "department", placeholder: "customer_service" });
  const overdue = h("input", { id: "overdue", type: "checkbox" });
  const list = h("div", { id: "queue" });
  const reload = async (): Promise<void> => {
    list.replaceChildren(h("p", {}, t("loading")));
    try {
      const page = await vitals.followUps.listFollowUps({
        statuses: status.value ? [Number(status.value)] : [],
        department: department.value.trim(),
        overdueOnly: overdue.checked,
        pageSize: 100,
      });
      list.replaceChildren(
        page.followUps.length === 0
          ? h("p", { class: "note" }, t("followUps.empty"))
          : h("ul", { class: "tasks" }, ...page.followUps.map((f) => queueItem(f, reload))),
      );
    } catch (error) {
      list.replaceChildren(errorBox(error));
    }
  };
  for (const el of [status, department, overdue]) el.addEventListener("change", () => void reload());
  show(
    h("h1", {}, t("followUps.heading")),
    h(
      "div",
      { class: "filters" },
      h("label", { for: "status" }, t("followUps.status")),
      status,
      h("label", { for: "department" }, t("followUps.department")),
      department,
      h("label", {}, overdue, ` ${t("followUps.overdueOnly")}`),
    ),
    list,
  );
  await reload();
}

function queueItem(f: FollowUp, reload: () => Promise<void>): HTMLElement {
  const message = h("p", { class: "error", role: "alert" });
  const text = h("input", { "aria-label": t("followUps.assignee"), value: f.assignee });
  const act = async (action: Parameters<Vitals["followUps"]["updateFollowUp"]>[0]["action"]) => {
    message.replaceChildren();
    try {
      await vitals.followUps.updateFollowUp({ id: f.id, etag: f.etag, action });
      await reload();
    } catch (error) {
      const p = problem(error);
      if (p.stale) {
        message.replaceChildren(
          t("followUps.stale"),
          " ",
          h("button", { type: "button", click: () => void reload() }, t("followUps.reload")),
        );
      } else {
        message.textContent = p.message;
      }
    }
  };
  const button = (label: Key, onClick: () => void) =>
    h("button", { type: "button", click: onClick }, t(label));
  return h(
    "li",
    { class: "task", "data-id": f.id },
    h("div", {}, customerLink(f), ` · ${coded("reason", FollowUpReason[f.reason])} · ${f.department} · ${f.detail}`),
    h(
      "div",
      { class: "meta" },
      `${statusLabel(f.status)} · ${t("followUps.due")} ${when(f.dueTime)}`,
      f.overdue ? h("span", { class: "overdue" }, ` · ${t("followUps.overdue")}`) : null,
    ),
    !may("writer")
      ? null
      : h(
      "div",
      { class: "actions" },
      text,
      button("followUps.assign", () =>
        void act({ case: "assign", value: { assignee: text.value.trim() } }),
      ),
      button("followUps.start", () =>
        void act({ case: "start", value: { assignee: text.value.trim() } }),
      ),
      button("followUps.resolve", () =>
        void act({ case: "resolve", value: { outcome: text.value.trim() || "done" } }),
      ),
      button("followUps.dismiss", () =>
        void act({ case: "dismiss", value: { reason: text.value.trim() || "not needed" } }),
      ),
    ),
    message,
  );
}

// ---- Overview ----------------------------------------------------------------------

const PALETTE = ["#1f5fbf", "#a4161a", "#1b6e3a", "#8a5a00", "#6a3d9a", "#00707a", "#4a5468", "#b3368f"];

/**
 * A line chart as SVG, one line per series over shared x labels; undefined values leave
 * a gap. Drawn by hand: a charting library would outweigh the whole console.
 */
function lineChart(
  title: string,
  labels: string[],
  series: { name: string; values: (number | undefined)[] }[],
  format: (v: number) => string,
): HTMLElement {
  const ns = "http://www.w3.org/2000/svg";
  const [w, hgt, left, bottom, top] = [560, 220, 56, 28, 10];
  const all = series.flatMap((s) => s.values.filter((v): v is number => v !== undefined && Number.isFinite(v)));
  const lo = Math.min(0, ...all);
  const hi = Math.max(...all, lo + 1e-9);
  const x = (i: number) => left + (labels.length <= 1 ? 0 : (i / (labels.length - 1)) * (w - left - 10));
  const y = (v: number) => top + (1 - (v - lo) / (hi - lo)) * (hgt - top - bottom);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", title);
  const add = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    svg.append(el);
  };
  for (const v of [lo, (lo + hi) / 2, hi]) {
    add("line", { x1: left, x2: w - 10, y1: y(v), y2: y(v), stroke: "#d6dbe4" });
    add("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end", "font-size": 11, fill: "#4a5468" }, format(v));
  }
  labels.forEach((l, i) => {
    if (labels.length > 8 && i % Math.ceil(labels.length / 8) !== 0) return;
    add("text", { x: x(i), y: hgt - 8, "text-anchor": "middle", "font-size": 11, fill: "#4a5468" }, l);
  });
  series.forEach((s, k) => {
    let d = "";
    s.values.forEach((v, i) => {
      if (v === undefined || !Number.isFinite(v)) return;
      d += `${d === "" || s.values[i - 1] === undefined ? "M" : "L"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    add("path", { d, fill: "none", stroke: PALETTE[k % PALETTE.length] ?? "#1f5fbf", "stroke-width": 2 });
  });
  return h(
    "figure",
    { class: "card chart" },
    h("figcaption", {}, title),
    svg,
    h(
      "ul",
      { class: "legend" },
      ...series.map((s, k) =>
        h("li", {}, h("span", { class: "swatch", style: `background:${PALETTE[k % PALETTE.length]}` }), s.name),
      ),
    ),
  );
}

/** A bar chart as SVG: one bar per label, its count written above it. */
function barChart(title: string, labels: string[], values: number[]): HTMLElement {
  const ns = "http://www.w3.org/2000/svg";
  const [w, hgt, bottom, top] = [560, 200, 26, 18];
  const largest = Math.max(1, ...values);
  const step = (w - 20) / Math.max(1, labels.length);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${w} ${hgt}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${title}: ${labels.map((l, i) => `${l} ${values[i]}`).join(", ")}`);
  const add = (tag: string, attrs: Record<string, string | number>, text?: string) => {
    const el = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
    if (text !== undefined) el.textContent = text;
    svg.append(el);
  };
  labels.forEach((label, i) => {
    const v = values[i] ?? 0;
    const barH = ((hgt - top - bottom) * v) / largest;
    const x = 10 + i * step;
    add("rect", { x: x + 3, y: hgt - bottom - barH, width: step - 6, height: barH, fill: "#1f5fbf" });
    add("text", { x: x + step / 2, y: hgt - bottom - barH - 4, "text-anchor": "middle", "font-size": 11, fill: "#1d2330" }, v.toLocaleString(lang()));
    add("text", { x: x + step / 2, y: hgt - 8, "text-anchor": "middle", "font-size": 11, fill: "#4a5468" }, label);
  });
  return h("figure", { class: "card chart" }, h("figcaption", {}, title), svg);
}

async function overview(grouping: string): Promise<void> {
  show(h("p", {}, t("loading")));
  const groupBy = { segment: Grouping.SEGMENT, region: Grouping.REGION, tier: Grouping.TIER }[grouping] ?? Grouping.UNSPECIFIED;
  // The last twelve whole months: the current one is not over, and a half month would
  // read as a collapse.
  const end = new Date();
  end.setUTCDate(1);
  end.setUTCHours(0, 0, 0, 0);
  const start = new Date(end);
  start.setUTCMonth(start.getUTCMonth() - 12);
  try {
    const risk = await vitals.evaluations.getRiskSummary({});
    const m = await vitals.portfolio.getPortfolioMetrics({
      startTime: timestampFromDate(start),
      endTime: timestampFromDate(end),
      groupBy,
      granularity: Granularity.MONTH,
    });
    const labels = [...new Set(m.buckets.map((b) => (b.startTime ? timestampDate(b.startTime).toISOString().slice(0, 7) : "")))];
    const groups = [...new Set(m.buckets.map((b) => b.groupName || b.group))];
    const series = (pick: (b: (typeof m.buckets)[number]) => number | undefined) =>
      groups.map((g) => ({
        name: g,
        values: labels.map((l) => {
          const b = m.buckets.find((x) => (x.groupName || x.group) === g && x.startTime && timestampDate(x.startTime).toISOString().slice(0, 7) === l);
          return b ? pick(b) : undefined;
        }),
      }));
    const selector = h(
      "select",
      { id: "group-by", change: (e) => (location.hash = `#/overview/${(e.target as HTMLSelectElement).value}`) },
      ...["all", "segment", "region", "tier"].map((g) =>
        h("option", { value: g, ...(g === (grouping || "all") ? { selected: "" } : {}) }, t(`overview.by.${g}` as Key)),
      ),
    );
    const tierOrder = ["platinum", "gold", "silver", "bronze"];
    const tiers = Object.keys(risk.tiers).sort(
      (a, b) => (tierOrder.indexOf(a) + 99) % 99 - ((tierOrder.indexOf(b) + 99) % 99) || a.localeCompare(b),
    );
    show(
      h("h1", {}, t("overview.heading")),
      h(
        "div",
        { class: "grid", id: "value-at-risk" },
        ...risk.valueAtRisk.map((v) =>
          h(
            "section",
            { class: "card" },
            h("h2", {}, t("overview.valueAtRisk")),
            h("p", { class: "big" }, money(v.expectedLoss, v.currency)),
            h("p", { class: "note" }, t("overview.valueAtRiskNote", {
              customers: Number(v.customers).toLocaleString(lang()),
              value: money(v.value, v.currency),
            })),
          ),
        ),
      ),
      h(
        "div",
        { class: "grid charts" },
        barChart(
          t("overview.distribution"),
          risk.probabilityBins.map((_, i) => `${i * 10}%`),
          risk.probabilityBins.map(Number),
        ),
        barChart(t("overview.tiers"), tiers, tiers.map((x) => Number(risk.tiers[x] ?? 0n))),
      ),
      h("div", { class: "filters" }, h("label", { for: "group-by" }, t("overview.groupBy")), selector),
      h(
        "div",
        { class: "grid charts", id: "charts" },
        lineChart(t("overview.nps"), labels, series((b) => b.nps), (v) => v.toFixed(0)),
        lineChart(t("overview.churn"), labels, series((b) => b.churnRate), percent),
        lineChart(t("overview.retention"), labels, series((b) => b.retentionRate), percent),
        lineChart(t("overview.complaints"), labels, series((b) => Number(b.complaints)), (v) => v.toFixed(0)),
      ),
    );
  } catch (error) {
    show(errorBox(error));
  }
}

// ---- Campaigns ---------------------------------------------------------------------

async function campaigns(): Promise<void> {
  show(h("p", {}, t("loading")));
  const list = h("tbody");
  const message = h("p", { class: "error", role: "alert" });
  const name = h("input", { id: "campaign-name", required: "" });
  const action = h("input", { id: "campaign-action", value: "call", required: "" });
  const holdout = h("input", { id: "campaign-holdout", type: "number", step: "0.05", min: "0.05", max: "0.5", value: "0.1" });
  const horizon = h("input", { id: "campaign-horizon", type: "number", min: "1", value: "90" });
  const bands = ["high", "medium", "low"].map((b) =>
    h("label", {}, h("input", { type: "checkbox", name: "band", value: b, ...(b === "high" ? { checked: "" } : {}) }), ` ${b}`),
  );
  const form = h(
    "form",
    {
      class: "card",
      id: "new-campaign",
      submit: async (e) => {
        e.preventDefault();
        message.replaceChildren();
        try {
          await vitals.followUps.createCampaign({
            name: name.value.trim(),
            actionKind: action.value.trim(),
            holdoutShare: Number(holdout.value),
            horizonDays: Number(horizon.value),
            target: {
              riskBands: bands
                .map((l) => l.querySelector("input"))
                .filter((i): i is HTMLInputElement => !!i?.checked)
                .map((i) => i.value),
            },
          });
          location.hash = `#/campaign/${encodeURIComponent(name.value.trim())}`;
        } catch (error) {
          message.textContent = problem(error).message;
        }
      },
    },
    h("h2", {}, t("campaigns.new")),
    h("div", { class: "filters" }, h("label", { for: "campaign-name" }, t("campaigns.name")), name, h("label", { for: "campaign-action" }, t("campaigns.action")), action),
    h("div", { class: "filters" }, h("span", {}, t("campaigns.bands")), ...bands),
    h("div", { class: "filters" }, h("label", { for: "campaign-holdout" }, t("campaigns.holdout")), holdout, h("label", { for: "campaign-horizon" }, t("campaigns.horizon")), horizon),
    h("button", { type: "submit" }, t("campaigns.create")),
    message,
  );
  try {
    const r = await vitals.followUps.listCampaigns({ pageSize: 100 });
    for (const c of r.campaigns) {
      list.append(
        h(
          "tr",
          {},
          h("td", {}, h("a", { href: `#/campaign/${encodeURIComponent(c.name)}` }, c.name)),
          h("td", {}, c.actionKind),
          h("td", { class: "num" }, String(c.treatedCount)),
          h("td", { class: "num" }, String(c.controlCount)),
          h("td", {}, when(c.drawTime)),
        ),
      );
    }
    show(
      h("h1", {}, t("campaigns.heading")),
      h(
        "table",
        { id: "campaigns" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, t("campaigns.name")),
            h("th", { scope: "col" }, t("campaigns.action")),
            h("th", { scope: "col", class: "num" }, t("campaigns.treated")),
            h("th", { scope: "col", class: "num" }, t("campaigns.control")),
            h("th", { scope: "col" }, t("campaigns.drawn")),
          ),
        ),
        list,
      ),
      may("writer") ? form : null,
    );
  } catch (error) {
    show(errorBox(error));
  }
}

/** The effect's interval on a line from -0.5 to +0.5, zero marked: where the truth likely lies. */
function intervalChart(low: number, high: number, point: number): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const x = (v: number) => 20 + ((Math.max(-0.5, Math.min(0.5, v)) + 0.5) * 360);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 400 60");
  svg.setAttribute("width", "400");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", `${percent(low)} … ${percent(high)}`);
  const line = (x1: number, y1: number, x2: number, y2: number, stroke: string, width: number) => {
    const l = document.createElementNS(ns, "line");
    for (const [k, v] of Object.entries({ x1, y1, x2, y2, stroke, "stroke-width": width })) l.setAttribute(k, String(v));
    svg.append(l);
  };
  line(20, 30, 380, 30, "#d6dbe4", 2);
  line(x(0), 10, x(0), 50, "#4a5468", 1);
  line(x(low), 30, x(high), 30, "#1f5fbf", 6);
  const dot = document.createElementNS(ns, "circle");
  for (const [k, v] of Object.entries({ cx: x(point), cy: 30, r: 6, fill: "#1d2330" })) dot.setAttribute(k, String(v));
  svg.append(dot);
  return svg;
}

async function campaign(campaignName: string): Promise<void> {
  show(h("p", {}, t("loading")));
  try {
    const [c, members, review] = await Promise.all([
      vitals.followUps.getCampaign({ name: campaignName }),
      vitals.followUps.listCampaignMembers({ campaign: campaignName, pageSize: 100 }),
      vitals.followUps.reviewCampaign({ subject: { case: "campaign", value: campaignName } }),
    ]);
    show(
      h("p", {}, h("a", { href: "#/campaigns" }, `← ${t("campaigns.heading")}`)),
      h("h1", { id: "campaign-name" }, c.name),
      h("p", { class: "note" }, t("campaigns.about", { action: c.actionKind, treated: String(c.treatedCount), control: String(c.controlCount), days: String(c.horizonDays) })),
      h(
        "section",
        { class: "card", id: "review" },
        h("h2", {}, t("campaigns.review")),
        h("p", { class: "verdict" }, h("strong", {}, review.verdict.replace(/_/g, " ")), ": ", h("span", { id: "review-summary" }, review.summary)),
        // Too few counted yet: rates and an interval would only be noise.
        review.verdict === "too_few"
          ? null
          : h("p", {}, t("campaigns.rates", {
              treated: percent(review.treated?.churnRate ?? 0),
              control: percent(review.control?.churnRate ?? 0),
              low: percent(review.ciLow),
              high: percent(review.ciHigh),
            })),
        review.verdict === "too_few" ? null : intervalChart(review.ciLow, review.ciHigh, review.difference),
      ),
      h("h2", {}, t("campaigns.members")),
      h(
        "table",
        { id: "members" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, t("col.customer")), h("th", { scope: "col" }, t("campaigns.arm")), h("th", { scope: "col", class: "num" }, t("col.risk")))),
        h(
          "tbody",
          {},
          ...members.members.map((m) =>
            h(
              "tr",
              {},
              h("td", {}, customerLink(m)),
              h("td", {}, m.arm === 2 ? t("campaigns.control") : t("campaigns.treated")),
              h("td", { class: "num" }, m.churnProbability === undefined ? "–" : percent(m.churnProbability)),
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    show(errorBox(error));
  }
}

// ---- Segments ----------------------------------------------------------------------

async function segments(): Promise<void> {
  show(h("p", {}, t("loading")));
  try {
    const r = await vitals.evaluations.listSegments({});
    show(
      h("h1", {}, t("segments.heading")),
      h("p", { class: "note" }, t("segments.note", { version: String(r.modelVersion) })),
      h(
        "table",
        { id: "segments" },
        h(
          "thead",
          {},
          h(
            "tr",
            {},
            h("th", { scope: "col" }, t("col.segment")),
            h("th", { scope: "col" }, t("segments.population")),
            h("th", { scope: "col", class: "num" }, t("segments.size")),
            h("th", { scope: "col", class: "num" }, t("col.risk")),
            h("th", { scope: "col", class: "num" }, t("col.value")),
            h("th", { scope: "col" }, t("segments.traits")),
          ),
        ),
        h(
          "tbody",
          {},
          ...r.segments.map((s) =>
            h(
              "tr",
              {},
              h("td", {}, s.name),
              h("td", {}, s.population),
              h("td", { class: "num" }, Number(s.size).toLocaleString(lang())),
              h("td", { class: "num" }, s.meanChurnProbability === undefined ? "–" : percent(s.meanChurnProbability)),
              h("td", { class: "num" }, s.meanValue === undefined ? "–" : s.meanValue.toLocaleString(lang(), { maximumFractionDigits: 0 })),
              h("td", {}, s.traits.join(", ")),
            ),
          ),
        ),
      ),
    );
  } catch (error) {
    show(errorBox(error));
  }
}

// ---- Models ------------------------------------------------------------------------

async function models(): Promise<void> {
  show(h("p", {}, t("loading")));
  try {
    const list = await vitals.models.listModels({});
    const kinds = [...new Set(list.models.map((m) => m.kind))];
    const activations = (
      await Promise.all(kinds.map((kind) => vitals.models.listActivations({ kind })))
    )
      .flatMap((r) => r.activations)
      .sort((a, b) => Number((a.time?.seconds ?? 0n) - (b.time?.seconds ?? 0n)));
    const reason = h("input", { id: "activation-reason", placeholder: t("models.reasonHint") });
    const message = h("p", { class: "error", role: "alert" });
    const metric = (m: (typeof list.models)[number]) => {
      const shown = ["roc_auc", "pr_auc", "k"].filter((k) => m.metrics[k] !== undefined);
      return shown.map((k) => `${k} ${m.metrics[k]?.toFixed(k === "k" ? 0 : 3)}`).join(" · ");
    };
    show(
      h("h1", {}, t("models.heading")),
      may("admin")
        ? h("div", { class: "filters" }, h("label", { for: "activation-reason" }, t("models.reason")), reason)
        : null,
      message,
      ...kinds.map((kind) =>
        h(
          "section",
          { class: "card", "data-kind": kind },
          h("h2", {}, kind),
          h(
            "table",
            {},
            h(
              "thead",
              {},
              h(
                "tr",
                {},
                h("th", { scope: "col" }, t("models.version")),
                h("th", { scope: "col" }, t("models.algorithm")),
                h("th", { scope: "col" }, t("models.created")),
                h("th", { scope: "col" }, t("models.metrics")),
                h("th", { scope: "col" }, t("models.state")),
                h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, t("models.activate"))),
              ),
            ),
            h(
              "tbody",
              {},
              ...list.models
                .filter((m) => m.kind === kind)
                .map((m) =>
                  h(
                    "tr",
                    { "data-version": String(m.version) },
                    h(
                      "td",
                      {},
                      // Churn and lifetime-value versions are published with a report.
                      kind === "segments"
                        ? `v${m.version}`
                        : h(
                            "a",
                            { href: `/reports/${kind}/${m.version}`, target: "_blank", rel: "noopener" },
                            `v${m.version}`,
                          ),
                    ),
                    h("td", {}, m.algorithm),
                    h("td", {}, new Date(m.created).toLocaleString(lang(), { dateStyle: "medium", timeStyle: "short" })),
                    h("td", {}, metric(m)),
                    h("td", { class: "state" }, m.active ? t("models.active") : ""),
                    h(
                      "td",
                      {},
                      m.active || !may("admin")
                        ? null
                        : h(
                            "button",
                            {
                              type: "button",
                              click: async () => {
                                message.replaceChildren();
                                try {
                                  await vitals.models.activateModel({
                                    kind,
                                    version: m.version,
                                    reason: reason.value.trim() || "activated in the console",
                                  });
                                  await models();
                                } catch (error) {
                                  message.textContent = problem(error).message;
                                }
                              },
                            },
                            t("models.activate"),
                          ),
                    ),
                  ),
                ),
            ),
          ),
        ),
      ),
      may("writer") ? refreshPanel() : null,
      await schemeEditor(),
      h("h2", {}, t("models.history")),
      h(
        "ol",
        { id: "activations", class: "timeline" },
        ...activations
          .slice()
          .reverse()
          .map((a) =>
            h(
              "li",
              {},
              h("time", {}, when(a.time)),
              ` ${a.kind} ${a.previousVersion === 0n ? t("models.none") : `v${a.previousVersion}`} → v${a.version} · ${a.actor} · ${a.reason}`,
            ),
          ),
      ),
    );
  } catch (error) {
    show(errorBox(error));
  }
}

// ---- Refresh -----------------------------------------------------------------------

/**
 * Recomputes every customer's stored evaluation with the models in service, its
 * progress streamed as it goes (RefreshEvaluations, a server-streaming call).
 */
function refreshPanel(): HTMLElement {
  const progress = h("progress", { id: "refresh-progress", max: "1", value: "0", "aria-label": t("refresh.heading") });
  const status = h("p", { id: "refresh-status", role: "status" });
  const button = h("button", { type: "button", id: "refresh" }, t("refresh.start"));
  button.addEventListener("click", async () => {
    button.disabled = true;
    status.textContent = t("loading");
    try {
      for await (const p of vitals.evaluations.refreshEvaluations({})) {
        const total = Number(p.customersTotal);
        progress.max = Math.max(1, total);
        progress.value = Number(p.customersDone);
        status.textContent = p.finished
          ? t("refresh.done", {
              stored: Number(p.evaluationsStored).toLocaleString(lang()),
              opened: Number(p.followUpsOpened).toLocaleString(lang()),
              seconds: p.seconds.toFixed(1),
            })
          : t("refresh.running", { done: Number(p.customersDone).toLocaleString(lang()), total: total.toLocaleString(lang()) });
      }
    } catch (error) {
      status.textContent = problem(error).message;
    } finally {
      button.disabled = false;
    }
  });
  return h(
    "section",
    { class: "card" },
    h("h2", {}, t("refresh.heading")),
    h("p", { class: "note" }, t("refresh.note")),
    button,
    " ",
    progress,
    status,
  );
}

// ---- Scoring scheme ----------------------------------------------------------------

/**
 * The scoring scheme in force, editable by admins: dimension weights and tier thresholds.
 * The server validates; each field it refuses gets its reason next to its input.
 */
async function schemeEditor(): Promise<HTMLElement> {
  const scheme = await vitals.evaluations.getScoringScheme({ version: 0n });
  const editable = may("admin");
  const problems = new Map<string, HTMLElement>();
  const slot = (field: string) => {
    const p = h("span", { class: "error field-error", "data-field": field, role: "alert" });
    problems.set(field, p);
    return p;
  };
  const weights = Object.entries(scheme.weights).map(([dimension, w]) => ({
    dimension,
    input: h("input", {
      id: `weight-${dimension}`,
      type: "number",
      step: "0.01",
      value: String(w),
      ...(editable ? {} : { disabled: "" }),
    }),
  }));
  const tiers = scheme.tiers.map((tier, i) => ({
    name: h("input", { id: `tier-${i}-name`, value: tier.name, "aria-label": `${t("scheme.tier")} ${i + 1}`, ...(editable ? {} : { disabled: "" }) }),
    min: h("input", { id: `tier-${i}-min`, type: "number", step: "1", value: String(tier.minScore), "aria-label": `${t("scheme.minScore")} ${i + 1}`, ...(editable ? {} : { disabled: "" }) }),
  }));
  const general = h("p", { class: "error", role: "alert" });
  const heading = h("h2", {}, t("scheme.heading", { version: String(scheme.version) }));
  const form = h(
    "form",
    {
      class: "card",
      id: "scheme",
      submit: async (e) => {
        e.preventDefault();
        general.replaceChildren();
        for (const p of problems.values()) p.replaceChildren();
        try {
          const saved = await vitals.evaluations.updateScoringScheme({
            scheme: {
              version: scheme.version,
              weights: Object.fromEntries(weights.map((w) => [w.dimension, Number(w.input.value)])),
              tiers: tiers.map((x) => ({ name: x.name.value, minScore: Number(x.min.value) })),
            },
          });
          general.className = "note";
          general.textContent = t("scheme.saved", { version: String(saved.version) });
          scheme.version = saved.version;
          heading.textContent = t("scheme.heading", { version: String(saved.version) });
        } catch (error) {
          const p = problem(error);
          general.className = "error";
          if (p.stale) {
            general.textContent = t("followUps.stale");
            return;
          }
          for (const f of p.fields) {
            const at = problems.get(f.field);
            if (at) at.textContent = f.description;
            else general.append(`${f.field}: ${f.description}. `);
          }
          if (p.fields.length === 0) general.textContent = p.message;
        }
      },
    },
    heading,
    h("h3", {}, t("scheme.weights")),
    slot("scheme.weights"),
    h(
      "div",
      { class: "scheme-grid" },
      ...weights.flatMap((w) => [
        h("label", { for: w.input.id }, w.dimension),
        w.input,
        slot(`scheme.weights[${w.dimension}]`),
      ]),
    ),
    h("h3", {}, t("scheme.tiers")),
    slot("scheme.tiers"),
    h(
      "div",
      { class: "scheme-grid tiers" },
      ...tiers.flatMap((x, i) => [
        x.name,
        x.min,
        h("span", {}, slot(`scheme.tiers[${i}].name`), " ", slot(`scheme.tiers[${i}].min_score`)),
      ]),
    ),
    editable ? h("button", { type: "submit" }, t("scheme.save")) : null,
    general,
  );
  return form;
}

// ---- Shell -------------------------------------------------------------------------

function nav(): void {
  const links: [string, Key][] = [
    ["#/overview", "nav.overview"],
    ["#/at-risk", "nav.atRisk"],
    ["#/win-back", "nav.winBack"],
    ["#/follow-ups", "nav.followUps"],
    ["#/campaigns", "nav.campaigns"],
    ["#/segments", "nav.segments"],
    ["#/models", "nav.models"],
  ];
  const el = document.getElementById("nav");
  if (!el) return;
  el.replaceChildren(
    h("strong", { class: "brand" }, t("title")),
    ...links.map(([href, key]) => h("a", { href }, t(key))),
    h(
      "button",
      {
        type: "button",
        id: "lang",
        click: () => {
          const next: Lang = lang() === "en" ? "zh-CN" : "en";
          localStorage.setItem(LANG_STORE, next);
          setLang(next);
          void route();
        },
      },
      t("lang"),
    ),
    h(
      "button",
      {
        type: "button",
        click: () => {
          sessionStorage.removeItem(KEY_STORE);
          vitals = connect();
          location.hash = "#/sign-in";
        },
      },
      t("nav.signOut"),
    ),
  );
  document.title = t("title");
}

async function route(): Promise<void> {
  nav();
  const [, page, arg] = location.hash.split("/");
  switch (page) {
    case "sign-in":
      return signIn();
    case "win-back":
      return winBack();
    case "customer":
      return customer(decodeURIComponent(arg ?? ""));
    case "follow-ups":
      return followUps();
    case "overview":
      return overview(arg ?? "");
    case "campaigns":
      return campaigns();
    case "campaign":
      return campaign(decodeURIComponent(arg ?? ""));
    case "segments":
      return segments();
    case "models":
      return models();
    case "at-risk":
      return atRisk(arg === "loss" ? AtRiskOrder.EXPECTED_LOSS : AtRiskOrder.PROBABILITY);
    default:
      location.hash = "#/at-risk";
  }
}

setLang((localStorage.getItem(LANG_STORE) as Lang | null) ?? "en");
window.addEventListener("hashchange", () => void route());
void route();
