use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use super::*;
use crate::text::features::{bucket, hashed_row};
use crate::text::tokenize::{prepare, tokenize};

/// Hotel reviews from templates: positive ones praise or deny a fault, negative ones
/// complain or deny a virtue, so negation decides the label as often as the adjective.
pub(crate) fn english_reviews(n: usize, seed: u64) -> Vec<(String, bool)> {
    const SUBJECTS: &[&str] = &[
        "room",
        "staff",
        "breakfast",
        "location",
        "bed",
        "service",
        "wifi",
        "bathroom",
    ];
    const GOOD: &[&str] = &[
        "great",
        "clean",
        "friendly",
        "comfortable",
        "excellent",
        "helpful",
        "lovely",
        "quiet",
    ];
    const BAD: &[&str] = &[
        "dirty", "rude", "noisy", "terrible", "broken", "slow", "awful", "smelly",
    ];
    const FILL: &[&str] = &[
        "honestly",
        "overall",
        "this time",
        "on our trip",
        "for the price",
        "again",
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let positive = rng.random_bool(0.5);
            let negate = rng.random_bool(0.4);
            let subject = SUBJECTS.choose(&mut rng).copied().unwrap_or("room");
            let adjective = if positive != negate { GOOD } else { BAD }
                .choose(&mut rng)
                .copied()
                .unwrap_or("ok");
            let not = if negate { "not " } else { "" };
            let fill = FILL.choose(&mut rng).copied().unwrap_or("");
            let text = format!("The {subject} was {not}{adjective} {fill}.");
            // 5% of labels flipped: real scores disagree with words now and then.
            (text, positive != rng.random_bool(0.05))
        })
        .collect()
}

pub(crate) fn chinese_reviews(n: usize, seed: u64, traditional_share: f64) -> Vec<(String, bool)> {
    const SUBJECTS: &[&str] = &[
        "房间", "服务", "早餐", "位置", "前台", "卫生", "环境", "价格",
    ];
    const GOOD: &[&str] = &[
        "干净", "热情", "舒适", "方便", "满意", "划算", "安静", "周到",
    ];
    const BAD: &[&str] = &["脏", "冷淡", "吵", "糟糕", "失望", "贵", "简陋", "差劲"];
    const FILL: &[&str] = &["这次", "总体来说", "说实话", "我们觉得", "入住时"];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|_| {
            let positive = rng.random_bool(0.5);
            let negate = rng.random_bool(0.4);
            let subject = SUBJECTS.choose(&mut rng).copied().unwrap_or("房间");
            let adjective = if positive != negate { GOOD } else { BAD }
                .choose(&mut rng)
                .copied()
                .unwrap_or("好");
            let fill = FILL.choose(&mut rng).copied().unwrap_or("");
            let text = if negate {
                format!("{fill}{subject}不{adjective}。")
            } else {
                format!("{fill}{subject}很{adjective}。")
            };
            let text = if rng.random_bool(traditional_share) {
                traditional(&text)
            } else {
                text
            };
            (text, positive != rng.random_bool(0.05))
        })
        .collect()
}

fn traditional(s: &str) -> String {
    use ferrous_opencc::{OpenCC, config::BuiltinConfig};
    OpenCC::from_config(BuiltinConfig::S2t).map_or_else(|_| s.to_string(), |c| c.convert(s))
}

fn training(rows: &[(String, bool)], groups: u64) -> Vec<TrainingComment<'_>> {
    rows.iter()
        .enumerate()
        .map(|(i, (text, label))| TrainingComment {
            text,
            positive: Some(*label),
            group: i as u64 % groups,
        })
        .collect()
}

#[test]
fn language_tags_round_trip() {
    for l in Language::ALL {
        assert_eq!(Language::parse_tag(l.tag()), Some(l));
        assert_eq!(Language::parse_tag(&l.tag().to_uppercase()), Some(l));
    }
    assert_eq!(Language::parse_tag("fr"), None);
    assert_eq!(Language::Undetermined.family(), Family::English);
    assert_eq!(Language::ChineseTraditional.family(), Family::Chinese);
    let json = serde_json::to_string(&Language::ChineseSimplified).expect("json");
    assert_eq!(json, "\"zh-Hans\"");
}

#[test]
fn detects_languages() {
    let cases = [
        (
            "The delivery was late and the box was damaged.",
            Language::English,
        ),
        (
            "这家酒店的房间很干净，服务也不错。",
            Language::ChineseSimplified,
        ),
        (
            "這家酒店的房間很乾淨，服務也不錯。",
            Language::ChineseTraditional,
        ),
        ("送貨很快，東西質量很好", Language::ChineseTraditional),
        ("iPhone 很好用，电池也耐用", Language::ChineseSimplified),
        (
            "I stayed at the 北京 Hilton last week and loved it",
            Language::English,
        ),
        ("", Language::Undetermined),
        ("   \n\t ", Language::Undetermined),
        ("👍👍👍", Language::Undetermined),
        ("12345 !!!", Language::Undetermined),
        ("Отличный сервис, спасибо", Language::Undetermined),
        ("ＧＯＯＤ ｓｅｒｖｉｃｅ", Language::English),
        ("Très bien, merci", Language::English),
    ];
    for (text, want) in cases {
        assert_eq!(detect_language(text), want, "{text:?}");
    }
}

#[test]
fn tokens_are_normalised_with_negation_marked() {
    assert_eq!(tokens("Not good!", Language::English), ["not", "not_good"]);
    let t = tokens(
        "The staff didn’t help at all, but the room was nice",
        Language::English,
    );
    assert!(t.contains(&"not_help".to_string()), "{t:?}");
    assert!(t.contains(&"nice".to_string()), "{t:?}");
    // The comma ends the negation: "room" is not negated.
    assert!(t.contains(&"room".to_string()), "{t:?}");
    assert_eq!(
        tokens("ＧＲＥＡＴ Service", Language::English),
        ["great", "service"]
    );
    assert_eq!(
        tokens("love it 👍🏽", Language::English),
        ["love", "it", "👍"]
    );

    let zh = tokens("房间没有窗户，服务很好", Language::ChineseSimplified);
    assert!(zh.contains(&"not_窗户".to_string()), "{zh:?}");
    assert!(zh.contains(&"服务".to_string()), "{zh:?}");
    let zh = tokens("服务不 热情", Language::ChineseSimplified);
    assert!(zh.contains(&"not_热情".to_string()), "{zh:?}");
    // Traditional comes out Simplified.
    let zht = tokens("這個產品的質量很好", Language::ChineseTraditional);
    let zhs = tokens("这个产品的质量很好", Language::ChineseSimplified);
    assert_eq!(zht, zhs);
    assert!(zhs.contains(&"产品".to_string()), "{zhs:?}");
}

#[test]
fn hashing_is_deterministic_and_stable() {
    // A saved model depends on buckets never moving: pin one.
    let (b, sign) = bucket(0x0123_4567_89ab_cdef, 20);
    assert_eq!((b, sign), (GOLDEN_BUCKET, GOLDEN_SIGN));
    let p = prepare("The room was not clean, the staff was rude!");
    let tok = tokenize(Family::English, &p.text);
    let mut scratch = Vec::new();
    let a = hashed_row(Family::English, &tok, &p.text, 20, &mut scratch);
    let b = hashed_row(Family::English, &tok, &p.text, 20, &mut scratch);
    assert_eq!(a, b);
    assert!(
        a.windows(2).all(|w| w[0].0 < w[1].0),
        "sorted, unique buckets"
    );
    assert!(
        a.iter()
            .all(|&(b, v)| b < 1 << 20 && v != 0.0 && v.is_finite())
    );
    // Both signs occur: the hash's top bit is used.
    assert!(a.iter().any(|r| r.1 < 0.0) && a.iter().any(|r| r.1 > 0.0));
    // Sublinear counts: "the" twice weighs 1 + ln 2.
    let twice = 1.0 + 2f32.ln();
    assert!(a.iter().any(|r| (r.1.abs() - twice).abs() < 1e-6), "{a:?}");
}

const GOLDEN_BUCKET: u32 = 142_570;
const GOLDEN_SIGN: f32 = -1.0;

#[test]
fn lexicon_reads_polarity_negation_and_degree() {
    let m = TextModel::lexicon_only();
    let s = |t: &str| m.analyse(t).sentiment;
    assert_eq!(m.analyse("good").source, SentimentSource::Lexicon);
    assert!(s("The service was good") > 0.2);
    assert!(s("The service was not good") < 0.0);
    assert!(s("The service was very good") > s("The service was good"));
    assert!(s("The service was good!!!") > s("The service was good"));
    assert!(s("terrible, rude staff") < -0.4);
    assert!(
        s("The food was great but the staff was rude")
            < s("The staff was rude but the food was great")
    );
    assert_eq!(s("The parcel arrived on Tuesday"), 0.0);
    assert!(s("服务很好") > 0.2, "{}", s("服务很好"));
    assert!(s("服务不好") < 0.0);
    assert!(s("我对房间不满意") < 0.0);
    assert!(s("非常满意") > s("满意"));
    assert!(s("服務很好") > 0.2, "Traditional reads the same");
    assert!(super::lexicon::of(Family::English).len() > 7000);
    assert!(super::lexicon::of(Family::Chinese).len() > 15_000);
}

#[test]
fn learns_sentiment_with_negation_in_both_languages() {
    let mut rows = english_reviews(1500, 1);
    rows.extend(chinese_reviews(1500, 2, 0.3));
    let comments = training(&rows, 400);
    let (model, report) = TextModel::fit(&comments, &TextParams::default()).expect("fit");
    for r in &report.families {
        assert_eq!(r.sentiment, SentimentSource::Learned, "{r:?}");
        assert!(r.held_out_by_customer);
        let learned = r.roc_auc_learned.expect("learned AUC");
        let lexicon = r.roc_auc_lexicon.expect("lexicon AUC");
        // 5% of labels are flipped: 0.95 is about the ceiling.
        assert!(learned > 0.9, "{r:?}");
        assert!(learned > lexicon, "{r:?}");
        assert_eq!(r.labelled, 1500);
        assert_eq!(r.train + r.held_out, 1500);
    }
    let s = |t: &str| model.analyse(t).sentiment;
    assert_eq!(
        model.analyse("The room was clean.").source,
        SentimentSource::Learned
    );
    assert!(
        s("The room was clean.") > 0.3,
        "{}",
        s("The room was clean.")
    );
    assert!(
        s("The room was not clean.") < -0.3,
        "{}",
        s("The room was not clean.")
    );
    assert!(s("The staff was rude.") < -0.3);
    assert!(s("The staff was not rude.") > 0.3);
    assert!(s("房间很干净。") > 0.3, "{}", s("房间很干净。"));
    assert!(s("房间不干净。") < -0.3, "{}", s("房间不干净。"));
    assert!(
        s("房間不乾淨。") < -0.3,
        "Traditional: {}",
        s("房間不乾淨。")
    );
    // Nothing to read: neutral, whatever the base rate.
    assert_eq!(s(""), 0.0);
    assert_eq!(s("..."), 0.0);
}

#[test]
fn falls_back_to_the_lexicon_and_says_why() {
    let rows = english_reviews(37, 3);
    let mut comments = training(&rows, 10);
    let one_class: Vec<(String, bool)> = chinese_reviews(300, 4, 0.0)
        .into_iter()
        .map(|(t, _)| (t, true))
        .collect();
    comments.extend(training(&one_class, 50));
    let (model, report) = TextModel::fit(&comments, &TextParams::default()).expect("fit");
    let en = &report.families[0];
    assert_eq!(en.sentiment, SentimentSource::Lexicon);
    assert_eq!(
        en.why_lexicon.as_deref(),
        Some("37 labelled comments, fewer than 200")
    );
    assert!(en.roc_auc_lexicon.is_some());
    let zh = &report.families[1];
    assert_eq!(zh.sentiment, SentimentSource::Lexicon);
    assert_eq!(
        zh.why_lexicon.as_deref(),
        Some("all 300 labelled comments are positive")
    );
    assert_eq!(model.analyse("great").source, SentimentSource::Lexicon);
    assert_eq!(
        model.sentiment_source(Family::Chinese),
        SentimentSource::Lexicon
    );
    // No comments at all is a model too: the lexicons.
    let (empty, report) = TextModel::fit(&[], &TextParams::default()).expect("fit");
    assert_eq!(report.families.len(), 2);
    assert!(empty.topics().is_empty());
}

/// Comments about deliveries and about batteries, with filler and tone words between.
fn two_subjects(n: usize, seed: u64) -> Vec<String> {
    const DELIVERY: &[&str] = &[
        "courier", "parcel", "package", "shipping", "delivery", "tracking",
    ];
    const BATTERY: &[&str] = &[
        "battery", "charger", "screen", "display", "charging", "cable",
    ];
    const FILL: &[&str] = &[
        "the", "was", "my", "and", "very", "great", "bad", "it", "again",
    ];
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let words = if i % 2 == 0 { DELIVERY } else { BATTERY };
            let mut w: Vec<&str> = (0..4)
                .filter_map(|_| words.choose(&mut rng).copied())
                .collect();
            w.extend((0..4).filter_map(|_| FILL.choose(&mut rng).copied()));
            w.join(" ")
        })
        .collect()
}

#[test]
fn finds_topics_named_by_their_words() {
    let texts = two_subjects(600, 5);
    let comments: Vec<TrainingComment<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| TrainingComment {
            text: t,
            positive: None,
            group: i as u64,
        })
        .collect();
    let params = TextParams {
        topics_per_family: 2,
        ..TextParams::default()
    };
    let (model, report) = TextModel::fit(&comments, &params).expect("fit");
    assert_eq!(report.families[0].topics, 2);
    assert_eq!(
        report.families[0].why_lexicon.as_deref(),
        Some("0 labelled comments, fewer than 200")
    );
    let topics = model.topics();
    assert_eq!(topics.len(), 2);
    let delivery = [
        "courier", "parcel", "package", "shipping", "delivery", "tracking",
    ];
    let battery = [
        "battery", "charger", "screen", "display", "charging", "cable",
    ];
    let mut kinds = Vec::new();
    for t in topics {
        let parts: Vec<&str> = t.name.split(" / ").collect();
        assert_eq!(parts.len(), 3, "{t:?}");
        let kind = if delivery.contains(&parts[0]) {
            &delivery
        } else {
            &battery
        };
        assert!(parts.iter().all(|p| kind.contains(p)), "{t:?}");
        assert!(
            t.terms.iter().all(|p| kind.contains(&p.as_str())),
            "stop and tone words left out: {t:?}"
        );
        assert!((t.share - 0.5).abs() < 0.1, "{t:?}");
        assert_eq!(t.family, Family::English);
        kinds.push(kind[0]);
    }
    kinds.sort_unstable();
    assert_eq!(kinds, ["battery", "courier"]);
    let id_of = |word: &str| {
        topics
            .iter()
            .find(|t| t.terms.iter().any(|x| x == word))
            .map(|t| t.id)
    };
    assert_eq!(
        model.analyse("The courier lost my parcel").topic,
        id_of("courier")
    );
    assert_eq!(
        model.analyse("battery died, charger broken").topic,
        id_of("battery")
    );
    assert_eq!(model.analyse("hello there").topic, None);
    assert_eq!(model.topic(topics[1].id), Some(&topics[1]));
    assert_eq!(model.topic(999), None);
}

#[test]
fn chinese_topics_read_well() {
    const ROOM: &[&str] = &["房间", "床单", "窗户", "空调", "卫生间", "浴室"];
    const FOOD: &[&str] = &["早餐", "餐厅", "咖啡", "面包", "水果", "鸡蛋"];
    let mut rng = StdRng::seed_from_u64(9);
    let texts: Vec<String> = (0..600)
        .map(|i| {
            let words = if i % 2 == 0 { ROOM } else { FOOD };
            let a = words.choose(&mut rng).copied().unwrap_or("");
            let b = words.choose(&mut rng).copied().unwrap_or("");
            format!("我们的{a}和{b}都很好，123，的了")
        })
        .collect();
    let comments: Vec<TrainingComment<'_>> = texts
        .iter()
        .map(|t| TrainingComment {
            text: t,
            positive: None,
            group: 0,
        })
        .collect();
    let params = TextParams {
        topics_per_family: 2,
        ..TextParams::default()
    };
    let (model, _) = TextModel::fit(&comments, &params).expect("fit");
    assert_eq!(model.topics().len(), 2);
    for t in model.topics() {
        assert_eq!(t.family, Family::Chinese);
        for term in &t.terms {
            assert!(
                ROOM.contains(&term.as_str()) || FOOD.contains(&term.as_str()),
                "{t:?}"
            );
        }
    }
}

#[test]
fn saves_and_loads_exactly_and_refuses_bad_files() {
    let mut rows = english_reviews(600, 11);
    rows.extend(chinese_reviews(600, 12, 0.5));
    let mut comments = training(&rows, 150);
    let topical = two_subjects(400, 13);
    comments.extend(topical.iter().map(|t| TrainingComment {
        text: t,
        positive: None,
        group: 7,
    }));
    let params = TextParams {
        topics_per_family: 3,
        ..TextParams::default()
    };
    let (model, _) = TextModel::fit(&comments, &params).expect("fit");
    assert!(!model.topics().is_empty());
    let dir = tempfile::tempdir().expect("tempdir");
    model.save(dir.path()).expect("save");
    let loaded = TextModel::load(dir.path()).expect("load");
    assert_eq!(loaded, model);
    for (t, _) in rows.iter().take(50) {
        assert_eq!(loaded.analyse(t), model.analyse(t));
    }
    // The lexicon-only model round-trips too.
    let lex = tempfile::tempdir().expect("tempdir");
    TextModel::lexicon_only().save(lex.path()).expect("save");
    assert_eq!(
        TextModel::load(lex.path()).expect("load"),
        TextModel::lexicon_only()
    );

    let weights = dir.path().join(super::file::WEIGHTS_FILE);
    let json = dir.path().join(super::file::JSON_FILE);
    let good_weights = std::fs::read(&weights).expect("read");
    let good_json = std::fs::read(&json).expect("read");
    let refuses = |what: &str, file: &str| {
        let err = TextModel::load(dir.path()).expect_err(what);
        let ModelError::File { path, .. } = &err else {
            panic!("{what}: {err}");
        };
        assert!(path.ends_with(file), "{what}: {err}");
    };
    for cut in [0, 7, good_weights.len() / 2, good_weights.len() - 1] {
        std::fs::write(&weights, &good_weights[..cut]).expect("write");
        refuses("truncated weights", super::file::WEIGHTS_FILE);
    }
    std::fs::write(&weights, b"\xff\xfe garbage that is not safetensors").expect("write");
    refuses("garbage weights", super::file::WEIGHTS_FILE);
    std::fs::write(&weights, &good_weights).expect("write");
    for bad in [
        good_json[..good_json.len() / 2].to_vec(),
        b"{}".to_vec(),
        b"\x00\x01\x02".to_vec(),
        String::from_utf8_lossy(&good_json)
            .replacen("\"format\": 1", "\"format\": 2", 1)
            .into_bytes(),
        String::from_utf8_lossy(&good_json)
            .replacen("hashed-v1", "hashed-v0", 1)
            .into_bytes(),
        String::from_utf8_lossy(&good_json)
            .replacen("\"hash_bits\": 20", "\"hash_bits\": 40", 1)
            .into_bytes(),
        String::from_utf8_lossy(&good_json)
            .replacen("\"buckets\": ", "\"buckets\": 1", 1)
            .into_bytes(),
        String::from_utf8_lossy(&good_json)
            .replacen("\"first_id\": 0", "\"first_id\": 5", 1)
            .into_bytes(),
    ] {
        std::fs::write(&json, &bad).expect("write");
        let err = TextModel::load(dir.path()).expect_err("bad json");
        assert!(matches!(err, ModelError::File { .. }), "{err}");
    }
    std::fs::remove_file(&json).expect("remove");
    refuses("missing json", super::file::JSON_FILE);
}

#[test]
fn bad_input_never_panics() {
    let mut rows = english_reviews(400, 21);
    rows.extend(chinese_reviews(400, 22, 0.2));
    let (model, _) = TextModel::fit(&training(&rows, 100), &TextParams::default()).expect("fit");
    let long_en = "the room was clean but noisy ".repeat(150);
    let long_zh = "房间很干净但是有点吵".repeat(400);
    let huge = "x".repeat(200_000);
    let inputs = [
        "",
        " ",
        "\0\0\0",
        "\u{1}\u{7}\u{1b}[31mred\u{1b}[0m",
        "\u{202e}evil\u{202c}",
        "e\u{301}\u{301}\u{301}\u{301}",
        "🏳️‍🌈👨‍👩‍👧‍👦",
        "\u{FEFF}bom",
        "\u{FFFD}\u{FFFD}",
        "n't not no never",
        "不不不不不",
        long_en.as_str(),
        long_zh.as_str(),
        huge.as_str(),
    ];
    for m in [&model, &TextModel::lexicon_only()] {
        for text in inputs {
            let a = m.analyse(text);
            assert!(
                a.sentiment.is_finite() && (-1.0..=1.0).contains(&a.sentiment),
                "{text:?}: {a:?}"
            );
        }
        let _ = tokens(&long_zh, Language::ChineseTraditional);
    }
    assert!(long_en.chars().count() >= 4000);
}

#[test]
fn refuses_bad_params() {
    for p in [
        TextParams {
            held_out_share: 0.0,
            ..TextParams::default()
        },
        TextParams {
            held_out_share: 1.0,
            ..TextParams::default()
        },
        TextParams {
            c: -1.0,
            ..TextParams::default()
        },
        TextParams {
            hash_bits: 40,
            ..TextParams::default()
        },
        TextParams {
            max_iter: 0,
            ..TextParams::default()
        },
    ] {
        assert!(TextModel::fit(&[], &p).is_err(), "{p:?}");
    }
}

/// Timing of `analyse` on one core (run in release:
/// `cargo test --release -p vitals-engine text::tests::analyse_timing -- --ignored --nocapture`).
#[test]
#[ignore = "a timing: run in release"]
fn analyse_timing() {
    let mut rows = english_reviews(20_000, 31);
    rows.extend(chinese_reviews(20_000, 32, 0.2));
    let (model, _) = TextModel::fit(&training(&rows, 5000), &TextParams::default()).expect("fit");
    model.warm_up();
    let en = "The room was not very clean and the staff seemed rude, but the breakfast was great and the location perfect for us.";
    let zh =
        "这家酒店的房间很干净，服务态度也不错，就是早餐没有什么选择，价格有点贵，下次还会再来。";
    let zht =
        "這家酒店的房間很乾淨，服務態度也不錯，就是早餐沒有什麼選擇，價格有點貴，下次還會再來。";
    for (name, text) in [
        ("en 20 words", en),
        ("zh-Hans 40 chars", zh),
        ("zh-Hant 40 chars", zht),
    ] {
        let mut times: Vec<f64> = (0..5000)
            .map(|_| {
                let t = std::time::Instant::now();
                std::hint::black_box(model.analyse(std::hint::black_box(text)));
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        times.sort_by(f64::total_cmp);
        println!(
            "{name}: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs",
            times[times.len() / 2],
            times[times.len() * 9 / 10],
            times[times.len() * 99 / 100]
        );
    }
}
/// A `label<TAB>text` file (with or without a leading `customer` column) as rows.
fn read_labelled(path: &std::path::Path) -> Vec<(String, bool)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let skip = usize::from(header.starts_with("customer\t"));
    lines
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut parts = l.splitn(2 + skip, '\t').skip(skip);
            let label = parts.next().unwrap_or_default() == "1";
            (parts.next().unwrap_or_default().to_string(), label)
        })
        .collect()
}

/// ROC-AUC on the real corpora in `fixtures/comments`, trained on the shared 70/30 split
/// (`python3 bench/text/split.py --all` writes it to `target/text-split/`; without it, a
/// split by hashed row) and compared with scikit-learn's numbers in
/// `bench/text/baseline.json`:
/// `cargo test --release -p vitals-engine text::tests::corpus_auc -- --ignored --nocapture`
#[test]
#[ignore = "reads the real corpora; run in release"]
fn corpus_auc() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut corpora: Vec<std::path::PathBuf> = std::fs::read_dir(root.join("fixtures/comments"))
        .expect("fixtures/comments")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension().is_some_and(|x| x == "tsv")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("lexicon_"))
        })
        .collect();
    corpora.sort();
    assert!(!corpora.is_empty(), "no corpora in fixtures/comments");
    let baseline: serde_json::Value = std::fs::read(root.join("bench/text/baseline.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    for path in corpora {
        let name = path
            .file_stem()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let shared = root.join("target/text-split").join(&name);
        let (train, test, split) = if shared.join("train.tsv").exists() {
            (
                read_labelled(&shared.join("train.tsv")),
                read_labelled(&shared.join("test.tsv")),
                "shared",
            )
        } else {
            let rows = read_labelled(&path);
            let (test, train): (Vec<_>, Vec<_>) = rows
                .into_iter()
                .enumerate()
                .partition(|(i, _)| super::train::unit_for_tests(*i as u64) < 0.3);
            let strip =
                |v: Vec<(usize, (String, bool))>| v.into_iter().map(|(_, r)| r).collect::<Vec<_>>();
            (strip(train), strip(test), "hashed")
        };
        let comments: Vec<TrainingComment<'_>> = train
            .iter()
            .enumerate()
            .map(|(i, (text, label))| TrainingComment {
                text,
                positive: Some(*label),
                group: i as u64,
            })
            .collect();
        let started = std::time::Instant::now();
        let (model, report) = TextModel::fit(&comments, &TextParams::default()).expect("fit");
        let seconds = started.elapsed().as_secs_f64();
        let labels: Vec<bool> = test.iter().map(|r| r.1).collect();
        let score = |m: &TextModel| -> f64 {
            let scores: Vec<f64> = test
                .iter()
                .map(|(t, _)| f64::from(m.analyse(t).sentiment))
                .collect();
            crate::metrics::roc_auc(&labels, &scores).expect("auc")
        };
        let learned = score(&model);
        let lexicon = score(&TextModel::lexicon_only());
        let sklearn = baseline["corpora"][&name]["models"].as_object().map(|m| {
            m.values()
                .filter_map(|v| v["roc_auc"].as_f64())
                .fold(0.0, f64::max)
        });
        let family = report
            .families
            .iter()
            .max_by_key(|f| f.labelled)
            .expect("family");
        println!(
            "{name}: {} train / {} test ({split} split): AUC learned {learned:.4}, lexicon {lexicon:.4}, scikit-learn best {sklearn:?}; C {:?}, inner held-out AUC {:?}; fit {seconds:.1} s",
            train.len(),
            test.len(),
            family.c,
            family.roc_auc_learned.map(|a| (a * 1e4).round() / 1e4),
        );
        let topics: Vec<&str> = model.topics().iter().map(|t| t.name.as_str()).collect();
        println!("  topics: {topics:?}");
        assert!(learned > lexicon, "{name}");
    }
}
