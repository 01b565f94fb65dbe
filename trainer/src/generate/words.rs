//! What synthetic customers write: a comment on some survey answers and a note on most
//! complaints, in English or Chinese (a customer writes in one language; most APAC
//! customers in Chinese, some in Traditional characters), about a subject (delivery,
//! billing, quality, support, price, the app), leaning as the score or the complaint does.
//!
//! Drawn from a stream of their own (`WORDS_STREAM`), so adding words changed no other
//! draw: a seed gives the same customers, events and churn as before words existed.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use vitals_domain::{EventPayload, FeedbackKind, InteractionKind};

use super::sampling::splitmix64;

/// Seeds the words stream apart from the customer's and the campaign's.
const WORDS_STREAM: u64 = 0x5eed_0000_0000_c0de;

/// Which way a comment leans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lean {
    Positive,
    Negative,
    Mixed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Script {
    English,
    Simplified,
    Traditional,
}

/// One customer's writing: their language and the stream their words come from.
pub(super) struct Writer {
    rng: StdRng,
    script: Script,
}

/// (subject, positive phrases, negative phrases) in English.
const ENGLISH: [(&str, &[&str], &[&str]); 6] = [
    (
        "delivery",
        &[
            "the parcel arrived a day early",
            "fast delivery and the courier was friendly",
            "shipping was quick and the package was well wrapped",
        ],
        &[
            "the parcel arrived two weeks late",
            "the courier lost my package",
            "delivery was late again and the box was damaged",
        ],
    ),
    (
        "billing",
        &[
            "the invoice was clear and the payment easy",
            "billing is simple and I got my refund quickly",
        ],
        &[
            "I was charged twice for the same invoice",
            "still waiting for my refund after a month",
            "the bill had charges I never agreed to",
        ],
    ),
    (
        "quality",
        &[
            "excellent quality, it works perfectly",
            "great product, well made and sturdy",
        ],
        &[
            "the product broke after a week",
            "poor quality, the material feels cheap",
            "it stopped working and the quality is awful",
        ],
    ),
    (
        "support",
        &[
            "the support agent solved my problem in minutes",
            "customer service was helpful and patient",
        ],
        &[
            "support never answered my emails",
            "the agent was rude and did not help",
            "I waited an hour on the phone for support",
        ],
    ),
    (
        "price",
        &[
            "good value for the price",
            "fair prices and a nice discount",
        ],
        &[
            "far too expensive for what you get",
            "the price went up again without notice",
        ],
    ),
    (
        "app",
        &[
            "the app is easy to use",
            "the website is fast and ordering is simple",
        ],
        &[
            "the app keeps crashing at checkout",
            "the website is slow and login fails",
        ],
    ),
];

/// The same subjects in Simplified Chinese.
const CHINESE: [(&str, &[&str], &[&str]); 6] = [
    (
        "delivery",
        &[
            "快递很快，第二天就到了",
            "物流速度快，包装完好",
            "送货及时，快递员态度好",
        ],
        &[
            "快递太慢了，等了两个星期",
            "物流太差，包裹丢了",
            "送货延迟，包装也破了",
        ],
    ),
    (
        "billing",
        &["发票开得很清楚，付款方便", "退款很快就到账了"],
        &[
            "同一笔订单被扣款两次",
            "退款一个月了还没到账",
            "账单上有莫名其妙的收费",
        ],
    ),
    (
        "quality",
        &["质量很好，做工精细", "产品质量不错，用着很满意"],
        &["质量太差，用了一周就坏了", "做工粗糙，材料很廉价"],
    ),
    (
        "support",
        &["客服很耐心，很快解决了问题", "售后服务态度很好"],
        &[
            "客服一直不回复",
            "客服态度恶劣，问题没解决",
            "打客服电话等了一个小时",
        ],
    ),
    (
        "price",
        &["性价比很高，价格实惠", "价格合理，还有优惠"],
        &["价格太贵了，不值这个钱", "又涨价了，也没通知"],
    ),
    (
        "app",
        &["应用很好用，界面清晰", "网站速度快，下单方便"],
        &["应用总是闪退，没法付款", "网站太慢，登录不了"],
    ),
];

/// Characters that differ between Simplified and Traditional in the phrases above.
const TRADITIONAL: [(char, char); 40] = [
    ('递', '遞'),
    ('运', '運'),
    ('货', '貨'),
    ('质', '質'),
    ('量', '量'),
    ('务', '務'),
    ('态', '態'),
    ('问', '問'),
    ('题', '題'),
    ('决', '決'),
    ('价', '價'),
    ('贵', '貴'),
    ('应', '應'),
    ('网', '網'),
    ('单', '單'),
    ('账', '賬'),
    ('费', '費'),
    ('发', '發'),
    ('开', '開'),
    ('楚', '楚'),
    ('还', '還'),
    ('没', '沒'),
    ('两', '兩'),
    ('优', '優'),
    ('惠', '惠'),
    ('实', '實'),
    ('满', '滿'),
    ('坏', '壞'),
    ('粗', '粗'),
    ('恶', '惡'),
    ('复', '覆'),
    ('话', '話'),
    ('时', '時'),
    ('员', '員'),
    ('装', '裝'),
    ('笔', '筆'),
    ('扣', '扣'),
    ('涨', '漲'),
    ('录', '錄'),
    ('闪', '閃'),
];

const MIXED_EN: [&str; 3] = [
    "it was okay overall, but",
    "mostly fine, although",
    "not bad, but",
];
const MIXED_ZH: [&str; 3] = ["总体还行，但是", "基本满意，不过", "还可以，只是"];

fn subject_index(category: &str) -> Option<usize> {
    match category {
        "delivery" => Some(0),
        "billing" => Some(1),
        "product" => Some(2),
        "service" => Some(3),
        _ => None,
    }
}

impl Writer {
    /// Customer `n`'s writing under `seed`; `region` decides the language.
    pub(super) fn new(seed: u64, n: u64, region: &str) -> Self {
        let mut rng = StdRng::seed_from_u64(splitmix64(splitmix64(seed ^ WORDS_STREAM) ^ n));
        let chinese = if region == "APAC" { 0.7 } else { 0.04 };
        let script = if rng.random_bool(chinese) {
            if rng.random_bool(0.25) {
                Script::Traditional
            } else {
                Script::Simplified
            }
        } else {
            Script::English
        };
        Self { rng, script }
    }

    /// Adds words to an event that can carry them: a comment on some survey answers, a
    /// note on most complaints.
    pub(super) fn annotate(&mut self, payload: &mut EventPayload) {
        match payload {
            EventPayload::Feedback(f) if f.comment.is_none() => {
                let Some(score) = f.score else { return };
                let (share, lean) = match f.kind {
                    FeedbackKind::Nps if score >= 9 => (0.35, Lean::Positive),
                    FeedbackKind::Nps if score <= 6 => (0.55, Lean::Negative),
                    FeedbackKind::Nps => (0.25, Lean::Mixed),
                    FeedbackKind::Csat | FeedbackKind::Review if score >= 4 => {
                        (0.3, Lean::Positive)
                    }
                    FeedbackKind::Csat | FeedbackKind::Review if score <= 2 => {
                        (0.5, Lean::Negative)
                    }
                    FeedbackKind::Csat | FeedbackKind::Review => (0.2, Lean::Mixed),
                    FeedbackKind::Ces => return,
                };
                if self.rng.random_bool(share) {
                    let subject = self.rng.random_range(0..ENGLISH.len());
                    f.comment = Some(self.sentence(subject, lean));
                }
            }
            // The draw in the guard happens only for a complaint without a note.
            EventPayload::Interaction(i)
                if i.kind == InteractionKind::Complaint
                    && i.note.is_none()
                    && self.rng.random_bool(0.6) =>
            {
                let subject = subject_index(&i.category)
                    .unwrap_or_else(|| self.rng.random_range(0..ENGLISH.len()));
                i.note = Some(self.sentence(subject, Lean::Negative));
            }
            _ => {}
        }
    }

    fn sentence(&mut self, subject: usize, lean: Lean) -> String {
        let (pick_good, pick_bad) = (ENGLISH[subject].1, ENGLISH[subject].2);
        let (zh_good, zh_bad) = (CHINESE[subject].1, CHINESE[subject].2);
        let chinese = self.script != Script::English;
        let pick = |rng: &mut StdRng, list: &[&'static str]| list[rng.random_range(0..list.len())];
        let text = match (lean, chinese) {
            (Lean::Positive, false) => capitalise(pick(&mut self.rng, pick_good)) + ".",
            (Lean::Negative, false) => capitalise(pick(&mut self.rng, pick_bad)) + ".",
            (Lean::Mixed, false) => format!(
                "{} {}.",
                capitalise(pick(&mut self.rng, &MIXED_EN)),
                pick(&mut self.rng, pick_bad)
            ),
            (Lean::Positive, true) => format!("{}。", pick(&mut self.rng, zh_good)),
            (Lean::Negative, true) => format!("{}。", pick(&mut self.rng, zh_bad)),
            (Lean::Mixed, true) => format!(
                "{}{}。",
                pick(&mut self.rng, &MIXED_ZH),
                pick(&mut self.rng, zh_bad)
            ),
        };
        if self.script == Script::Traditional {
            text.chars()
                .map(|c| {
                    TRADITIONAL
                        .iter()
                        .find(|(s, _)| *s == c)
                        .map_or(c, |(_, t)| *t)
                })
                .collect()
        } else {
            text
        }
    }
}

fn capitalise(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vitals_domain::Feedback;

    fn nps(score: i32) -> EventPayload {
        EventPayload::Feedback(Feedback {
            kind: FeedbackKind::Nps,
            score: Some(score),
            comment: None,
            channel: "email".into(),
        })
    }

    #[test]
    fn detractors_write_complaints_and_promoters_praise_in_their_own_language() {
        let mut english = (0..200)
            .map(|n| Writer::new(7, n, "EU"))
            .find(|w| w.script == Script::English)
            .expect("an English writer");
        let mut chinese = (0..200)
            .map(|n| Writer::new(7, n, "APAC"))
            .find(|w| w.script == Script::Simplified)
            .expect("a Chinese writer");
        let words = |w: &mut Writer, score| {
            (0..50)
                .filter_map(|_| {
                    let mut e = nps(score);
                    w.annotate(&mut e);
                    match e {
                        EventPayload::Feedback(f) => f.comment,
                        _ => None,
                    }
                })
                .collect::<Vec<_>>()
        };
        let bad = words(&mut english, 2);
        assert!(!bad.is_empty());
        assert!(
            bad.iter().all(|c| c.is_ascii() && c.ends_with('.')),
            "{bad:?}"
        );
        let good = words(&mut chinese, 10);
        assert!(!good.is_empty());
        assert!(good.iter().all(|c| c.ends_with('。')), "{good:?}");
    }

    #[test]
    fn the_same_seed_writes_the_same_words() {
        let write = || {
            let mut w = Writer::new(11, 42, "APAC");
            let mut e = nps(1);
            for _ in 0..10 {
                w.annotate(&mut e);
            }
            e
        };
        assert_eq!(write(), write());
    }
}
