//! Reasons in words: a churn model's per-column contributions folded into the features a
//! person knows ("tenure", "contract", "days since last purchase"), each with the
//! customer's value in its own unit ("3 months", "Month-to-month", "41 days",
//! "120.50 USD").
//!
//! A model sees one feature as several columns: a number and its logarithm, a missing
//! indicator beside it, one column per common value of a string attribute plus "other".
//! Their contributions add up to the feature's (log-odds are additive in a logistic
//! model; for the others each column's contribution is measured against the average,
//! and the sum is the same approximation), so a feature is explained once, by the sum.
//!
//! An attribute the customer does not have is not a reason for them: a customer with no
//! contract is not "explained" by the contract columns of customers who have one (their
//! contribution is what the model learned about *having no such attribute*, a property of
//! the population mix, not of the customer).

use std::collections::BTreeMap;

use crate::evaluation::{Factor, SegmentTrait};
use crate::features::{Behaviour, ColumnSource, FeatureSchema, RawFeatures};
use crate::records::AttributeValue;
use crate::words::{Language, Unit, count};

/// The feature a model column belongs to: what a person reads as one reason.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum FeatureKey {
    Behaviour(Behaviour),
    Attribute(String),
    /// A column this build cannot place (a behaviour it does not know): kept as named.
    Other(String),
}

impl FeatureKey {
    /// The key of a schema column.
    pub fn of(source: &ColumnSource) -> Self {
        match source {
            ColumnSource::Behaviour { feature, .. } | ColumnSource::Missing { feature } => {
                Behaviour::from_name(feature)
                    .map_or_else(|| Self::Other(feature.clone()), Self::Behaviour)
            }
            ColumnSource::Attribute { attribute }
            | ColumnSource::AttributeLog { attribute }
            | ColumnSource::Category { attribute, .. } => Self::Attribute(attribute.clone()),
        }
    }

    /// The stable name APIs and files carry: the behaviour's name, or `attr.NAME`.
    pub fn name(&self) -> String {
        match self {
            Self::Behaviour(b) => b.name().to_owned(),
            Self::Attribute(a) => format!("attr.{a}"),
            Self::Other(n) => n.clone(),
        }
    }

    /// What a person calls it. Attribute names are the company's own and stay as its
    /// data spells them (in words: `MonthlyCharges` → "monthly charges").
    pub fn label(&self, lang: Language) -> String {
        match self {
            Self::Behaviour(b) => behaviour_label(*b, lang).to_owned(),
            Self::Attribute(a) => humanize(a),
            Self::Other(n) => n.clone(),
        }
    }

    /// The key of a feature name as APIs carry it (`recency_days`, `attr.Contract`).
    pub fn parse(name: &str) -> Self {
        match name.strip_prefix("attr.") {
            Some(a) => Self::Attribute(a.to_owned()),
            None => Behaviour::from_name(name)
                .map_or_else(|| Self::Other(name.to_owned()), Self::Behaviour),
        }
    }
}

/// What a person calls a behavioural feature.
pub fn behaviour_label(b: Behaviour, lang: Language) -> &'static str {
    use Behaviour::*;
    let (en, zh) = match b {
        RecencyDays => ("days since last purchase", "距上次购买的天数"),
        Frequency30d => ("purchases in the last 30 days", "近 30 天购买次数"),
        Frequency90d => ("purchases in the last 90 days", "近 90 天购买次数"),
        Frequency365d => ("purchases in the last 12 months", "近 12 个月购买次数"),
        FrequencyTotal => ("purchases in all", "累计购买次数"),
        Monetary30d => ("spend in the last 30 days", "近 30 天消费"),
        Monetary90d => ("spend in the last 90 days", "近 90 天消费"),
        Monetary365d => ("spend in the last 12 months", "近 12 个月消费"),
        MonetaryTotal => ("spend in all", "累计消费"),
        AvgOrderValue => ("average order", "平均客单价"),
        TenureDays => ("time since sign-up", "注册时长"),
        DistinctPurchaseDays => ("days with a purchase", "有购买的天数"),
        MeanPurchaseGapDays => ("average time between purchases", "平均购买间隔"),
        SpendTrend => (
            "spend trend (last 90 days against the 90 before)",
            "消费趋势（近 90 天对比之前 90 天）",
        ),
        NpsLast => ("last NPS answer", "最近一次 NPS 评分"),
        NpsMean => ("mean NPS", "平均 NPS 评分"),
        CsatMean => ("mean CSAT", "平均满意度（CSAT）"),
        CesMean => ("mean effort score (CES)", "平均费力度（CES）"),
        DetractorAnswers => ("NPS answers of 0-6 (detractor)", "NPS 0-6 分（贬损者）回答"),
        FeedbackCount => ("survey answers", "问卷回答"),
        Interactions90d => ("contacts in the last 90 days", "近 90 天联系次数"),
        Complaints365d => ("complaints in the last 12 months", "近 12 个月投诉次数"),
        OpenTickets => ("open support tickets", "未解决的工单"),
        MeanResolutionHours => ("average time to resolve a ticket", "工单平均解决时长"),
        PaymentsDue => ("invoices due so far", "已到期账单"),
        LatePaymentShare => ("invoices paid late", "逾期支付的账单比例"),
        MeanDaysLate => ("average delay of a late payment", "逾期支付的平均天数"),
        OverdueAmount => ("overdue amount", "逾期金额"),
    };
    lang.pick(en, zh)
}

/// A behavioural feature's value in its own unit; `currency` for money (ISO code).
pub fn behaviour_value(b: Behaviour, v: f64, currency: Option<&str>, lang: Language) -> String {
    use Behaviour::*;
    if !v.is_finite() {
        let (en, zh) = match b {
            RecencyDays | AvgOrderValue | MeanPurchaseGapDays => ("no purchase yet", "尚无购买"),
            NpsLast | NpsMean => ("no NPS answer yet", "尚无 NPS 评分"),
            CsatMean => ("no CSAT answer yet", "尚无满意度评分"),
            CesMean => ("no effort score yet", "尚无费力度评分"),
            MeanResolutionHours => ("no ticket resolved yet", "尚无已解决的工单"),
            LatePaymentShare | MeanDaysLate => ("no invoice due yet", "尚无到期账单"),
            TenureDays => ("not known", "未知"),
            _ => ("none", "无"),
        };
        return lang.pick(en, zh).to_owned();
    }
    match b {
        RecencyDays | DistinctPurchaseDays | MeanPurchaseGapDays | MeanDaysLate => {
            count(v, Unit::Day, lang)
        }
        Frequency30d | Frequency90d | Frequency365d | FrequencyTotal => {
            count(v, Unit::Purchase, lang)
        }
        Monetary30d | Monetary90d | Monetary365d | MonetaryTotal | AvgOrderValue
        | OverdueAmount => money(v, currency),
        TenureDays => duration_days(v, lang),
        SpendTrend => {
            if v.abs() < 0.005 {
                lang.pick("unchanged", "持平").to_owned()
            } else if v >= 1.0 {
                lang.pick("buying again after 90 days without", "停购 90 天后重新购买")
                    .to_owned()
            } else if v <= -1.0 {
                lang.pick("stopped buying", "已停止购买").to_owned()
            } else {
                // (last - prior) / (last + prior) = t  ⇒  last / prior = (1 + t) / (1 - t).
                let ratio = (1.0 + v) / (1.0 - v);
                format!("{:+.0}%", (ratio - 1.0) * 100.0)
            }
        }
        NpsLast => out_of(format!("{v:.0}"), 10, lang),
        NpsMean => out_of(format!("{v:.1}"), 10, lang),
        CsatMean => out_of(format!("{v:.1}"), 5, lang),
        CesMean => out_of(format!("{v:.1}"), 7, lang),
        DetractorAnswers | FeedbackCount => count(v, Unit::Answer, lang),
        Interactions90d => count(v, Unit::Contact, lang),
        Complaints365d => count(v, Unit::Complaint, lang),
        OpenTickets => count(v, Unit::Ticket, lang),
        MeanResolutionHours => match (v >= 48.0, lang) {
            (true, Language::English) => format!("{:.1} days", v / 24.0),
            (true, Language::Chinese) => format!("{:.1} 天", v / 24.0),
            (false, Language::English) => format!("{v:.0} hours"),
            (false, Language::Chinese) => format!("{v:.0} 小时"),
        },
        PaymentsDue => count(v, Unit::Invoice, lang),
        LatePaymentShare => format!("{:.0}%", v * 100.0),
    }
}

/// A score on a scale: "4.0 of 10", "4.0 / 10 分".
fn out_of(score: String, scale: u8, lang: Language) -> String {
    match lang {
        Language::English => format!("{score} of {scale}"),
        Language::Chinese => format!("{score} / {scale} 分"),
    }
}

/// Money with its currency, two decimals and thousands separated: "1,234.50 USD".
pub fn money(v: f64, currency: Option<&str>) -> String {
    let cents = (v * 100.0).round();
    let sign = if cents < 0.0 { "-" } else { "" };
    let cents = cents.abs();
    let whole = (cents / 100.0).trunc() as u64;
    let fraction = (cents % 100.0) as u64;
    let grouped = thousands(whole);
    match currency {
        Some(code) if !code.is_empty() => format!("{sign}{grouped}.{fraction:02} {code}"),
        _ => format!("{sign}{grouped}.{fraction:02}"),
    }
}

/// A whole number with thousands separated: `1234567` → "1,234,567" (the reports' counts
/// and the money above).
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A span of days as a person says it: days under two months, months under two years,
/// then years.
pub fn duration_days(days: f64, lang: Language) -> String {
    const MONTH: f64 = 365.25 / 12.0;
    if days < 60.0 {
        count(days.round(), Unit::Day, lang)
    } else if days < 730.0 {
        count((days / MONTH).round(), Unit::Month, lang)
    } else {
        match lang {
            Language::English => format!("{:.1} years", days / 365.25),
            Language::Chinese => format!("{:.1} 年", days / 365.25),
        }
    }
}

/// An attribute name as words: `MonthlyCharges` → "monthly charges",
/// `payment_method` → "payment method", `SeniorCitizen` → "senior citizen".
pub fn humanize(name: &str) -> String {
    let mut out = String::new();
    let mut previous: Option<char> = None;
    for c in name.chars() {
        if c == '_' || c == '-' || c == '.' {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        } else if c.is_uppercase() {
            if previous.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
                out.push(' ');
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
        previous = Some(c);
    }
    out.trim().to_owned()
}

/// An attribute's value as words. Numbers named like money get the currency; a tenure
/// attribute (Telco's, in months) gets months; flags read "yes" or "no".
fn attribute_value(
    name: &str,
    value: &AttributeValue,
    currency: Option<&str>,
    lang: Language,
) -> String {
    let lower = name.to_lowercase();
    let yes_no = |b: bool| {
        if b {
            lang.pick("yes", "是")
        } else {
            lang.pick("no", "否")
        }
        .to_owned()
    };
    match value {
        AttributeValue::Bool(b) => yes_no(*b),
        AttributeValue::String(s) => s.clone(),
        AttributeValue::Number(v) => {
            let moneyish = ["charge", "amount", "price", "revenue", "spend", "fee"]
                .iter()
                .any(|m| lower.contains(m));
            if moneyish {
                money(*v, currency)
            } else if lower == "tenure" || lower.ends_with("months") {
                count(*v, Unit::Month, lang)
            } else if lower.contains("senior") && (*v == 0.0 || *v == 1.0) {
                yes_no(*v == 1.0)
            } else if (v - v.round()).abs() < 1e-9 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        }
    }
}

/// One factor per feature with a contribution: the columns of each feature summed, the
/// customer's value (from `raw` when known: a bare model input row has none), attributes
/// the customer lacks left out. Unsorted, and without words: a caller keeps the few it
/// shows and writes only those ([`in_words`]): writing every feature's words took 18% of
/// the server's CPU in a refresh of a million customers (BENCHMARKS.md).
pub fn factor_facts(
    schema: &FeatureSchema,
    contributions: &[f64],
    raw: Option<&RawFeatures>,
) -> Vec<Factor> {
    let mut sums: BTreeMap<FeatureKey, f64> = BTreeMap::new();
    for (column, &c) in schema.columns.iter().zip(contributions) {
        *sums.entry(FeatureKey::of(&column.source)).or_default() += c;
    }
    sums.into_iter()
        .filter(|(_, c)| c.abs() > 1e-6)
        .filter_map(|(key, contribution)| {
            let (value, attribute) = match (&key, raw) {
                (FeatureKey::Behaviour(b), Some(raw)) => {
                    let v = b.of(&raw.behaviour);
                    (v.is_finite().then_some(v), None)
                }
                (FeatureKey::Attribute(a), Some(raw)) => {
                    let value = raw.attributes.get(a)?;
                    let number = match value {
                        AttributeValue::Number(v) => Some(*v),
                        AttributeValue::Bool(b) => Some(f64::from(u8::from(*b))),
                        AttributeValue::String(_) => None,
                    };
                    (number, Some(value.clone()))
                }
                _ => (None, None),
            };
            Some(Factor {
                feature: key.name(),
                label: String::new(),
                value,
                display_value: String::new(),
                attribute,
                contribution,
            })
        })
        .collect()
}

/// The `top` factors raising the score and the `top` lowering it, strongest first, in
/// English words (the facts of [`factor_facts`], only the kept ones written).
pub fn strongest_factors(
    schema: &FeatureSchema,
    contributions: &[f64],
    raw: Option<&RawFeatures>,
    currency: Option<&str>,
    top: usize,
) -> (Vec<Factor>, Vec<Factor>) {
    let mut facts = factor_facts(schema, contributions, raw);
    facts.sort_by(|a, b| b.contribution.total_cmp(&a.contribution));
    let words = |f: &Factor| in_words(f, raw.is_some(), currency, Language::English);
    let raising = facts
        .iter()
        .take_while(|f| f.contribution > 0.0)
        .take(top)
        .map(words)
        .collect();
    let lowering = facts
        .iter()
        .rev()
        .take_while(|f| f.contribution < 0.0)
        .take(top)
        .map(words)
        .collect();
    (raising, lowering)
}

/// A factor with its label and value written in `lang`, from the facts it keeps (its
/// feature, number and attribute value). `has_value`: whether the factor came with the
/// customer's values at all (a bare model input row has no units, so no value in words).
/// A factor stored before it kept its attribute value keeps the words it was stored with.
pub fn in_words(
    factor: &Factor,
    has_value: bool,
    currency: Option<&str>,
    lang: Language,
) -> Factor {
    let key = FeatureKey::parse(&factor.feature);
    let display_value = match (&key, &factor.attribute) {
        _ if !has_value => String::new(),
        (FeatureKey::Behaviour(b), _) => {
            behaviour_value(*b, factor.value.unwrap_or(f64::NAN), currency, lang)
        }
        (FeatureKey::Attribute(a), Some(value)) => attribute_value(a, value, currency, lang),
        _ => factor.display_value.clone(),
    };
    Factor {
        label: key.label(lang),
        display_value,
        ..factor.clone()
    }
}

/// What a segment is called and how it differs from the average customer, in words.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentWords {
    pub name: String,
    pub description: String,
    /// One phrase per trait, in the order given.
    pub traits: Vec<String>,
}

/// A segment's words from its traits: each an input (a behaviour name or `attr.NAME`)
/// and its centroid's distance from the population mean in standard deviations, the
/// strongest first. The name is made of the two strongest.
pub fn segment_words(traits: &[SegmentTrait], lang: Language) -> SegmentWords {
    let phrases: Vec<String> = traits
        .iter()
        .map(|t| trait_phrase(&t.input, t.z > 0.0, lang))
        .collect();
    if phrases.is_empty() {
        return SegmentWords {
            name: lang.pick("Typical customers", "典型客户").to_owned(),
            description: lang
                .pick(
                    "Close to the average customer on every measure.",
                    "各项指标都接近平均客户。",
                )
                .to_owned(),
            traits: phrases,
        };
    }
    let name = phrases
        .iter()
        .take(2)
        .map(|p| capitalize(p))
        .collect::<Vec<_>>()
        .join(lang.pick(", ", "，"));
    let parts: Vec<String> = traits
        .iter()
        .zip(&phrases)
        .map(|(t, phrase)| match lang {
            Language::English => format!(
                "{phrase} ({:.1} standard deviations {} average)",
                t.z.abs(),
                if t.z > 0.0 { "above" } else { "below" }
            ),
            Language::Chinese => format!(
                "{phrase}（{}平均 {:.1} 个标准差）",
                if t.z > 0.0 { "高于" } else { "低于" },
                t.z.abs()
            ),
        })
        .collect();
    let description = match lang {
        Language::English => format!("{}.", capitalize(&parts.join("; "))),
        Language::Chinese => format!("{}。", parts.join("；")),
    };
    SegmentWords {
        name,
        description,
        traits: phrases,
    }
}

/// One trait in words: what a segment whose mean of `input` is high (or low) does.
fn trait_phrase(input: &str, high: bool, lang: Language) -> String {
    let (up, down) = match input {
        "recency_days" => (
            ("has not bought for a long time", "很久没有购买"),
            ("bought recently", "近期有购买"),
        ),
        "frequency_365d" => (("buys often", "购买频繁"), ("rarely buys", "很少购买")),
        "monetary_365d" => (("spends a lot", "消费高"), ("spends little", "消费低")),
        "avg_order_value" => (
            ("places large orders", "客单价高"),
            ("places small orders", "客单价低"),
        ),
        "tenure_days" => (
            ("long-standing customer", "老客户"),
            ("joined recently", "新近加入"),
        ),
        "nps_mean" => (
            ("would recommend us", "愿意推荐我们"),
            ("would not recommend us", "不愿推荐我们"),
        ),
        "csat_mean" => (
            ("satisfied with service", "对服务满意"),
            ("dissatisfied with service", "对服务不满意"),
        ),
        "complaints_365d" => (
            ("complains often", "经常投诉"),
            ("rarely complains", "很少投诉"),
        ),
        "late_payment_share" => (("pays late", "常逾期付款"), ("pays on time", "按时付款")),
        other => {
            let name = other.strip_prefix("attr.").unwrap_or(other);
            return match (lang, high) {
                (Language::English, true) => format!("high {name}"),
                (Language::English, false) => format!("low {name}"),
                (Language::Chinese, true) => format!("{name} 高"),
                (Language::Chinese, false) => format!("{name} 低"),
            };
        }
    };
    let (en, zh) = if high { up } else { down };
    lang.pick(en, zh).to_owned()
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Importance per feature: the mean absolute summed contribution over `rows` (each a
/// row's per-column contributions), largest first, as (name, label, importance).
pub fn importance(schema: &FeatureSchema, rows: &[Vec<f64>]) -> Vec<(String, String, f64)> {
    let keys: Vec<FeatureKey> = schema
        .columns
        .iter()
        .map(|c| FeatureKey::of(&c.source))
        .collect();
    let mut totals: BTreeMap<&FeatureKey, f64> = BTreeMap::new();
    for row in rows {
        let mut sums: BTreeMap<&FeatureKey, f64> = BTreeMap::new();
        for (key, c) in keys.iter().zip(row) {
            *sums.entry(key).or_default() += c;
        }
        for (key, s) in sums {
            *totals.entry(key).or_default() += s.abs();
        }
    }
    let n = rows.len().max(1) as f64;
    let mut out: Vec<(String, String, f64)> = totals
        .into_iter()
        .map(|(k, t)| (k.name(), k.label(Language::English), t / n))
        .collect();
    out.sort_by(|a, b| b.2.total_cmp(&a.2));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Column;

    const EN: Language = Language::English;

    fn column(source: ColumnSource) -> Column {
        Column {
            name: String::new(),
            source,
            mean: 0.0,
            std: 1.0,
        }
    }

    #[test]
    fn values_read_in_their_units() {
        assert_eq!(
            behaviour_value(Behaviour::TenureDays, 92.0, None, EN),
            "3 months"
        );
        assert_eq!(
            behaviour_value(Behaviour::TenureDays, 20.0, None, EN),
            "20 days"
        );
        assert_eq!(
            behaviour_value(Behaviour::TenureDays, 1000.0, None, EN),
            "2.7 years"
        );
        assert_eq!(
            behaviour_value(Behaviour::RecencyDays, 41.0, None, EN),
            "41 days"
        );
        assert_eq!(
            behaviour_value(Behaviour::RecencyDays, f64::NAN, None, EN),
            "no purchase yet"
        );
        assert_eq!(
            behaviour_value(Behaviour::NpsMean, 4.0, None, EN),
            "4.0 of 10"
        );
        assert_eq!(
            behaviour_value(Behaviour::Monetary365d, 1234.5, Some("USD"), EN),
            "1,234.50 USD"
        );
        assert_eq!(
            behaviour_value(Behaviour::Complaints365d, 1.0, None, EN),
            "1 complaint"
        );
        assert_eq!(
            behaviour_value(Behaviour::LatePaymentShare, 0.25, None, EN),
            "25%"
        );
        // Spend of 30 in the last 90 days against 10 in the 90 before: trend 0.5, +200%.
        assert_eq!(
            behaviour_value(Behaviour::SpendTrend, 0.5, None, EN),
            "+200%"
        );
        assert_eq!(money(-0.5, Some("EUR")), "-0.50 EUR");
        assert_eq!(money(1_000_000.0, None), "1,000,000.00");
        for (n, grouped) in [
            (0, "0"),
            (999, "999"),
            (5_800, "5,800"),
            (1_234_567, "1,234,567"),
        ] {
            assert_eq!(thousands(n), grouped);
        }
    }

    #[test]
    fn values_and_labels_read_in_chinese() {
        let zh = Language::Chinese;
        assert_eq!(
            behaviour_value(Behaviour::TenureDays, 92.0, None, zh),
            "3 个月"
        );
        assert_eq!(
            behaviour_value(Behaviour::RecencyDays, 41.0, None, zh),
            "41 天"
        );
        assert_eq!(
            behaviour_value(Behaviour::RecencyDays, f64::NAN, None, zh),
            "尚无购买"
        );
        assert_eq!(
            behaviour_value(Behaviour::NpsMean, 4.0, None, zh),
            "4.0 / 10 分"
        );
        assert_eq!(
            behaviour_value(Behaviour::Monetary365d, 1234.5, Some("CNY"), zh),
            "1,234.50 CNY"
        );
        assert_eq!(
            behaviour_label(Behaviour::RecencyDays, zh),
            "距上次购买的天数"
        );
        // Every behaviour has a label of its own in each language.
        for b in Behaviour::ALL {
            assert_ne!(behaviour_label(b, zh), behaviour_label(b, EN), "{b:?}");
            assert!(!behaviour_label(b, zh).is_ascii(), "{b:?}");
        }
    }

    #[test]
    fn attribute_names_become_words() {
        assert_eq!(humanize("MonthlyCharges"), "monthly charges");
        assert_eq!(humanize("payment_method"), "payment method");
        assert_eq!(humanize("Contract"), "contract");
        assert_eq!(humanize("SeniorCitizen"), "senior citizen");
    }

    #[test]
    fn the_strongest_factors_each_way_are_kept_strongest_first_and_in_words() {
        let behaviours = [
            Behaviour::TenureDays,
            Behaviour::RecencyDays,
            Behaviour::Frequency90d,
            Behaviour::MonetaryTotal,
            Behaviour::Complaints365d,
        ];
        let schema = FeatureSchema {
            columns: behaviours
                .iter()
                .map(|b| {
                    column(ColumnSource::Behaviour {
                        feature: b.name().into(),
                        log: false,
                    })
                })
                .collect(),
        };
        let mut raw = RawFeatures {
            behaviour: [f64::NAN; 28],
            attributes: Default::default(),
        };
        for (i, b) in behaviours.iter().enumerate() {
            raw.behaviour[*b as usize] = 10.0 * (i as f64 + 1.0);
        }
        let (raising, lowering) = strongest_factors(
            &schema,
            &[0.2, 0.9, -0.4, 0.5, -0.05],
            Some(&raw),
            Some("EUR"),
            2,
        );
        let names = |f: &[Factor]| f.iter().map(|f| f.feature.clone()).collect::<Vec<_>>();
        assert_eq!(names(&raising), ["recency_days", "monetary_total"]);
        assert_eq!(names(&lowering), ["frequency_90d", "complaints_365d"]);
        assert!(
            raising
                .iter()
                .chain(&lowering)
                .all(|f| !f.label.is_empty() && !f.display_value.is_empty()),
            "{raising:?} {lowering:?}"
        );
        assert_eq!(raising[1].display_value, "40.00 EUR");
        // The same facts as every factor written, cut to the kept ones.
        let all: Vec<Factor> = factor_facts(&schema, &[0.2, 0.9, -0.4, 0.5, -0.05], Some(&raw))
            .iter()
            .map(|f| in_words(f, true, Some("EUR"), Language::English))
            .collect();
        for kept in raising.iter().chain(&lowering) {
            assert!(all.contains(kept), "{kept:?}");
        }
    }

    #[test]
    fn a_feature_s_columns_fold_into_one_factor_and_absent_attributes_are_no_reason() {
        let schema = FeatureSchema {
            columns: vec![
                column(ColumnSource::Behaviour {
                    feature: "tenure_days".into(),
                    log: true,
                }),
                column(ColumnSource::Missing {
                    feature: "tenure_days".into(),
                }),
                column(ColumnSource::Category {
                    attribute: "Contract".into(),
                    value: Some("Month-to-month".into()),
                }),
                column(ColumnSource::Category {
                    attribute: "Contract".into(),
                    value: None,
                }),
                column(ColumnSource::Attribute {
                    attribute: "plan_price".into(),
                }),
            ],
        };
        let mut raw = RawFeatures {
            behaviour: [f64::NAN; 28],
            attributes: Default::default(),
        };
        raw.behaviour[Behaviour::TenureDays as usize] = 92.0;
        raw.attributes.insert(
            "Contract".into(),
            AttributeValue::String("Month-to-month".into()),
        );
        let f: Vec<Factor> = factor_facts(&schema, &[0.5, 0.25, 1.0, -0.1, 0.3], Some(&raw))
            .iter()
            .map(|f| in_words(f, true, Some("USD"), Language::English))
            .collect();
        assert_eq!(f.len(), 2, "{f:?}");
        let tenure = f
            .iter()
            .find(|f| f.feature == "tenure_days")
            .expect("tenure");
        assert_eq!(tenure.label, "time since sign-up");
        assert_eq!(tenure.display_value, "3 months");
        let zh = in_words(tenure, true, Some("USD"), Language::Chinese);
        assert_eq!(
            (zh.label.as_str(), zh.display_value.as_str()),
            ("注册时长", "3 个月")
        );
        assert_eq!(zh.contribution, tenure.contribution);
        assert!((tenure.contribution - 0.75).abs() < 1e-12);
        let contract = f
            .iter()
            .find(|f| f.feature == "attr.Contract")
            .expect("contract");
        assert_eq!(contract.label, "contract");
        assert_eq!(contract.display_value, "Month-to-month");
        assert!((contract.contribution - 0.9).abs() < 1e-12);
        // plan_price: the customer has none, so its 0.3 explains nothing about them.
        assert!(f.iter().all(|f| f.feature != "attr.plan_price"));

        let imp = importance(&schema, &[vec![0.5, 0.25, 1.0, -0.1, 0.3]]);
        assert_eq!(imp[0].1, "contract");
        assert_eq!(imp.len(), 3, "one entry per feature, not per column");
    }
}
