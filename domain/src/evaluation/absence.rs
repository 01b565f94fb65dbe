//! Why a part of an evaluation is missing, as facts, written in the reader's language.

use serde::{Deserialize, Serialize};

use crate::labels::{LAPSED_AFTER_DAYS, Population};
use crate::words::Language;

/// Why a part of an evaluation is missing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Absence {
    NoChurnModel,
    NoSegmentsModel,
    NoLifetimeModel,
    /// Not signed up yet at the evaluation's time.
    NotYetCustomer,
    /// Churned at or before the evaluation's time.
    Churned,
    /// A shop customer with no purchase for more than `LAPSED_AFTER_DAYS`.
    Lapsed {
        days: f64,
        bought: bool,
    },
    /// The active churn or segments version has nothing for the customer's population.
    NoModelForPopulation {
        part: ModelPart,
        version: u64,
        population: Population,
    },
    /// RFM needs a purchase.
    NoPurchaseForRfm,
    /// The reference statistics lack the quintiles of `key` (recency, frequency, monetary).
    NoReferenceQuintiles {
        key: String,
    },
    /// No purchase and no sign-up time: nothing to value the customer from.
    NothingToValue,
    /// A subscription is valued from its churn risk, which is missing for this reason.
    NoChurnRiskToValue {
        because: Box<Absence>,
    },
    /// A subscription is valued from its monthly revenue, and it has none.
    NoMonthlyRevenue,
}

/// The part of the models an absence names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelPart {
    Churn,
    Segments,
}

impl Absence {
    /// The reason in words, with what to do about it where something can be done.
    pub fn words(&self, lang: Language) -> String {
        let en = lang == Language::English;
        match self {
            Self::NoChurnModel => lang
                .pick(
                    "no churn model is active: run `vitals-trainer train --activate` (or ActivateModel)",
                    "尚无启用的流失模型：请运行 `vitals-trainer train --activate`（或调用 ActivateModel）",
                )
                .to_owned(),
            Self::NoSegmentsModel => lang
                .pick(
                    "no segments model is active: run `vitals-trainer train --activate` with segments (the reference statistics ship with it)",
                    "尚无启用的分群模型：请运行 `vitals-trainer train --activate` 训练分群（参考统计随之发布）",
                )
                .to_owned(),
            Self::NoLifetimeModel => lang
                .pick(
                    "no lifetime-value model is active: train on data with repeat purchases (`vitals-trainer train --activate`)",
                    "尚无启用的客户终身价值模型：请用含重复购买的数据训练（`vitals-trainer train --activate`）",
                )
                .to_owned(),
            Self::NotYetCustomer => lang
                .pick("not a customer yet at this time", "此时尚未成为客户")
                .to_owned(),
            Self::Churned => lang
                .pick(
                    "already churned: nothing left to predict",
                    "已流失：无需再预测",
                )
                .to_owned(),
            Self::Lapsed { days, bought: true } if en => format!(
                "lapsed: no purchase in {days:.0} days (more than {LAPSED_AFTER_DAYS:.0}); \
                 on the win-back list, not the at-risk list"
            ),
            Self::Lapsed { days, bought: false } if en => format!(
                "lapsed: no purchase in the {days:.0} days since sign-up (more than \
                 {LAPSED_AFTER_DAYS:.0}); on the win-back list, not the at-risk list"
            ),
            Self::Lapsed { days, bought: true } => format!(
                "已沉睡：{days:.0} 天没有购买（超过 {LAPSED_AFTER_DAYS:.0} 天）；\
                 列入赢回名单，而非流失风险名单"
            ),
            Self::Lapsed { days, bought: false } => format!(
                "已沉睡：注册后 {days:.0} 天没有购买（超过 {LAPSED_AFTER_DAYS:.0} 天）；\
                 列入赢回名单，而非流失风险名单"
            ),
            Self::NoModelForPopulation {
                part,
                version,
                population,
            } => {
                let who = population.label(lang);
                match (part, en) {
                    (ModelPart::Churn, true) => format!(
                        "churn version {version} has no model for {who}: there were too few \
                         of them to train one"
                    ),
                    (ModelPart::Churn, false) => {
                        format!("流失模型第 {version} 版没有{who}的模型：训练时这类客户太少")
                    }
                    (ModelPart::Segments, true) => {
                        format!("segments version {version} has no segmentation of {who}")
                    }
                    (ModelPart::Segments, false) => {
                        format!("分群模型第 {version} 版没有对{who}分群")
                    }
                }
            }
            Self::NoPurchaseForRfm => lang
                .pick(
                    "no purchase yet: RFM needs at least one",
                    "尚无购买：RFM 至少需要一次购买",
                )
                .to_owned(),
            Self::NoReferenceQuintiles { key } if en => {
                format!("the reference statistics have no {key} quintiles")
            }
            Self::NoReferenceQuintiles { key } => format!("参考统计缺少 {key} 的五分位数"),
            Self::NothingToValue => lang
                .pick(
                    "no purchase and no sign-up time: nothing to value the customer from",
                    "既无购买也无注册时间：无从估算客户价值",
                )
                .to_owned(),
            Self::NoChurnRiskToValue { because } => {
                let because = because.words(lang);
                if en {
                    format!(
                        "a subscription is valued from its churn risk, and there is none: {because}"
                    )
                } else {
                    format!("订阅客户的价值由其流失风险估算，而流失风险缺失：{because}")
                }
            }
            Self::NoMonthlyRevenue => lang
                .pick(
                    "a subscription is valued from what it pays each month: no invoice in the last 90 days and no monthly-charge attribute",
                    "订阅客户的价值由其每月付费估算：近 90 天没有账单，也没有月费属性",
                )
                .to_owned(),
        }
    }
}
