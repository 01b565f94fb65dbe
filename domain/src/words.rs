//! The languages Vitals writes its words in, and the small pieces every catalogue uses.
//!
//! Every sentence, label and value-with-unit the server writes (factor labels and values,
//! segment names, how a lifetime value was reached, why a part is absent, a campaign
//! review's sentence) is rendered per request in the caller's language, taken from the
//! `accept-language` request metadata (a browser sends it by itself; the console sets it to
//! the language chosen on the page). The words sit beside each other in one `match` per
//! subject (`explain`, `evaluation::rfm`, `labels`, `campaign`), so a phrase added in one
//! language without the other does not compile.
//!
//! What is stored (evaluation snapshots) keeps the facts the words are made from, so a
//! snapshot written once reads in either language.

/// A language the server writes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Language {
    #[default]
    English,
    /// Simplified Chinese (zh-CN, zh-Hans).
    Chinese,
}

impl Language {
    /// The BCP 47 tag the server answers with.
    pub fn tag(self) -> &'static str {
        match self {
            Self::English => "en",
            Self::Chinese => "zh-CN",
        }
    }

    /// The language of one tag, if the server writes it. Every `zh` tag is Chinese: the
    /// words are Simplified, which a reader of Traditional reads far better than English.
    pub fn of_tag(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?.to_ascii_lowercase();
        match primary.as_str() {
            "en" => Some(Self::English),
            "zh" => Some(Self::Chinese),
            _ => None,
        }
    }

    /// The caller's language from an HTTP `Accept-Language` value
    /// (`zh-CN,zh;q=0.9,en;q=0.8`): the supported tag with the highest weight, ties to
    /// the earlier; English when none is supported or the value is malformed.
    pub fn from_accept_language(header: &str) -> Self {
        let mut best: Option<(f32, Self)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let Some(lang) = parts.next().and_then(Self::of_tag) else {
                continue;
            };
            let weight = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            if weight > 0.0 && best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, lang));
            }
        }
        best.map_or(Self::English, |(_, lang)| lang)
    }

    /// The phrase in this language, from the pair written side by side.
    pub fn pick<'a>(self, english: &'a str, chinese: &'a str) -> &'a str {
        match self {
            Self::English => english,
            Self::Chinese => chinese,
        }
    }
}

/// Things counted with a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Day,
    Month,
    Purchase,
    Answer,
    Contact,
    Complaint,
    Ticket,
    Invoice,
}

impl Unit {
    /// (English singular, English plural, Chinese unit with its measure word).
    fn words(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::Day => ("day", "days", "天"),
            Self::Month => ("month", "months", "个月"),
            Self::Purchase => ("purchase", "purchases", "次购买"),
            Self::Answer => ("answer", "answers", "条回答"),
            Self::Contact => ("contact", "contacts", "次联系"),
            Self::Complaint => ("complaint", "complaints", "次投诉"),
            Self::Ticket => ("ticket", "tickets", "张工单"),
            Self::Invoice => ("invoice", "invoices", "张账单"),
        }
    }
}

/// A count with its unit: "1 day", "41 days", "2.5 months"; "41 天", "3 个月".
pub fn count(v: f64, unit: Unit, lang: Language) -> String {
    let (one, many, zh) = unit.words();
    let n = v.round();
    let number = if (v - n).abs() < 1e-9 {
        format!("{n:.0}")
    } else {
        format!("{v:.1}")
    };
    match lang {
        Language::Chinese => format!("{number} {zh}"),
        Language::English if (v - 1.0).abs() < 1e-9 => format!("1 {one}"),
        Language::English => format!("{number} {many}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_the_heaviest_supported_tag() {
        use Language::*;
        assert_eq!(Language::from_accept_language("zh-CN"), Chinese);
        assert_eq!(Language::from_accept_language("zh-Hans-CN"), Chinese);
        assert_eq!(Language::from_accept_language("en-GB"), English);
        assert_eq!(
            Language::from_accept_language("fr-FR,fr;q=0.9,zh;q=0.8,en;q=0.7"),
            Chinese
        );
        assert_eq!(Language::from_accept_language("en;q=0.5, zh-CN"), Chinese);
        assert_eq!(Language::from_accept_language("zh;q=0, en"), English);
        assert_eq!(Language::from_accept_language("de"), English);
        assert_eq!(Language::from_accept_language(""), English);
        assert_eq!(Language::from_accept_language(";;,q=x"), English);
    }

    #[test]
    fn counts_read_in_both_languages() {
        assert_eq!(count(1.0, Unit::Day, Language::English), "1 day");
        assert_eq!(count(41.0, Unit::Day, Language::English), "41 days");
        assert_eq!(count(2.5, Unit::Month, Language::English), "2.5 months");
        assert_eq!(count(41.0, Unit::Day, Language::Chinese), "41 天");
        assert_eq!(count(1.0, Unit::Complaint, Language::Chinese), "1 次投诉");
    }
}
