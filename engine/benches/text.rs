//! Text analysis timings: `analyse` latency per comment on one core, and fitting time.
//!
//! `cargo bench -p vitals-engine --bench text` (plain timing, no criterion: the workspace
//! has no benchmark harness and one number per case is what is reported).
//! `TEXT_BENCH_COMMENTS=1000000` sets how many comments the fit is timed on (default
//! 200,000, half English and half Chinese, about 20 words or 40 characters each).

use std::time::Instant;

use rand::{Rng, SeedableRng, rngs::StdRng};
use vitals_engine::text::{TextModel, TextParams, TrainingComment};

const SYLLABLES: &[&str] = &[
    "ba", "ke", "lo", "mi", "nu", "ra", "si", "to", "ve", "za", "ch", "st", "pr", "an", "er", "in",
    "on", "ou", "th", "sh",
];
const GOOD: &[&str] = &[
    "great",
    "clean",
    "friendly",
    "excellent",
    "helpful",
    "fast",
    "lovely",
];
const BAD: &[&str] = &[
    "dirty", "rude", "slow", "terrible", "broken", "noisy", "awful",
];
const HAN: &str = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严龙飞";

fn english(rng: &mut StdRng, positive: bool) -> String {
    let mut words: Vec<String> = (0..18)
        .map(|_| {
            // A Zipf-like vocabulary of made-up words: a few common, a long tail.
            let len = 1 + (rng.random::<f64>().powi(2) * 3.0) as usize;
            (0..len)
                .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
                .collect()
        })
        .collect();
    let pick = if positive { GOOD } else { BAD };
    words.insert(
        rng.random_range(0..words.len()),
        pick[rng.random_range(0..pick.len())].to_string(),
    );
    if rng.random_bool(0.3) {
        let other = if positive { BAD } else { GOOD };
        words.insert(
            rng.random_range(0..words.len()),
            format!("not {}", other[rng.random_range(0..other.len())]),
        );
    }
    words.join(" ")
}

fn chinese(rng: &mut StdRng, positive: bool) -> String {
    let han: Vec<char> = HAN.chars().collect();
    let mut s: String = (0..36)
        .map(|_| han[(rng.random::<f64>().powi(2) * han.len() as f64) as usize % han.len()])
        .collect();
    s.push_str(if positive {
        "，很满意"
    } else {
        "，不满意"
    });
    s
}

fn comments(n: usize, seed: u64) -> Vec<(String, bool)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let positive = rng.random_bool(0.6);
            let text = if i % 2 == 0 {
                english(&mut rng, positive)
            } else {
                chinese(&mut rng, positive)
            };
            (text, positive != rng.random_bool(0.1))
        })
        .collect()
}

fn percentiles(mut us: Vec<f64>) -> (f64, f64, f64) {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)];
    (at(0.5), at(0.9), at(0.99))
}

fn time_analyse(model: &TextModel, label: &str) {
    let cases = [
        (
            "en, 20 words",
            "The room was not very clean and the staff seemed rude, but the breakfast was great and the location perfect for us.",
        ),
        (
            "zh-Hans, 40 chars",
            "这家酒店的房间很干净，服务态度也不错，就是早餐没有什么选择，价格有点贵，下次还会再来。",
        ),
        (
            "zh-Hant, 40 chars",
            "這家酒店的房間很乾淨，服務態度也不錯，就是早餐沒有什麼選擇，價格有點貴，下次還會再來。",
        ),
    ];
    for (name, text) in cases {
        for _ in 0..500 {
            std::hint::black_box(model.analyse(text));
        }
        let times: Vec<f64> = (0..20_000)
            .map(|_| {
                let t = Instant::now();
                std::hint::black_box(model.analyse(std::hint::black_box(text)));
                t.elapsed().as_secs_f64() * 1e6
            })
            .collect();
        let (p50, p90, p99) = percentiles(times);
        println!(
            "analyse {label:8} {name:18} p50 {p50:6.1} µs  p90 {p90:6.1} µs  p99 {p99:6.1} µs"
        );
    }
}

fn main() {
    let n: usize = std::env::var("TEXT_BENCH_COMMENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let lexicon = TextModel::lexicon_only();
    lexicon.warm_up();
    time_analyse(&lexicon, "lexicon");

    let rows = comments(n, 1);
    let training: Vec<TrainingComment<'_>> = rows
        .iter()
        .enumerate()
        .map(|(i, (text, positive))| TrainingComment {
            text,
            positive: Some(*positive),
            group: i as u64 / 3,
        })
        .collect();
    let threads = rayon::current_num_threads();
    let t = Instant::now();
    let fitted = TextModel::fit(&training, &TextParams::default());
    let seconds = t.elapsed().as_secs_f64();
    match fitted {
        Ok((model, report)) => {
            println!("fit on {n} comments ({threads} threads): {seconds:.1} s");
            for f in &report.families {
                println!(
                    "  {:?}: {} labelled, C {:?}, AUC learned {:?} lexicon {:?}, {} topics",
                    f.family, f.labelled, f.c, f.roc_auc_learned, f.roc_auc_lexicon, f.topics
                );
            }
            time_analyse(&model, "learned");
        }
        Err(e) => println!("fit failed: {e}"),
    }
}
