//! Text analysis timings: `analyse` latency per comment on one core, and fitting time.
//!
//! `cargo bench -p vitals-engine --bench text` (plain timing, no criterion: the workspace
//! has no benchmark harness and one number per case is what is reported).
//! `TEXT_BENCH_COMMENTS=1000000` sets how many comments the fit is timed on (default
//! 200,000, half English and half Chinese, about 20 words or 40 characters each);
//! `TEXT_BENCH_MAX_FIT_ROWS` overrides `TextParams::max_fit_rows`.

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

/// Words drawn by Zipf's law (rank r with weight 1/r), as words in text are: a few very
/// common, a long tail. The vocabulary is made up, so the numbers do not depend on any
/// corpus; its shape is what decides the cost.
struct Zipf {
    words: Vec<String>,
    cumulative: Vec<f64>,
}

impl Zipf {
    fn new(words: Vec<String>) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=words.len())
            .map(|r| {
                total += 1.0 / r as f64;
                total
            })
            .collect();
        Self { words, cumulative }
    }

    fn draw(&self, rng: &mut StdRng) -> &str {
        let total = self.cumulative.last().copied().unwrap_or(1.0);
        let u = rng.random::<f64>() * total;
        let i = self.cumulative.partition_point(|&c| c < u);
        &self.words[i.min(self.words.len() - 1)]
    }
}

/// 30,000 English-like words of 1 to 4 syllables.
fn english_vocabulary(rng: &mut StdRng) -> Zipf {
    Zipf::new(
        (0..30_000)
            .map(|_| {
                let syllables = rng.random_range(1..=4);
                (0..syllables)
                    .map(|_| SYLLABLES[rng.random_range(0..SYLLABLES.len())])
                    .collect()
            })
            .collect(),
    )
}

/// 20,000 Chinese-like words of 1 to 3 characters, the characters themselves drawn by
/// frequency.
fn chinese_vocabulary(rng: &mut StdRng) -> Zipf {
    let chars = Zipf::new(HAN.chars().map(String::from).collect());
    Zipf::new(
        (0..20_000)
            .map(|_| {
                let n = rng.random_range(1..=3);
                (0..n).map(|_| chars.draw(rng).to_string()).collect()
            })
            .collect(),
    )
}

const HAN: &str = "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则任取据处队南给色光门即保治北造百规热领七海口东导器压志世金增争济阶油思术极交受联什认六共权收证改清己美再采转更单风切打白教速花带安场身车例真务具万每目至达走积示议声报斗完类八离华名确才科张信马节话米整空元况今集温传土许步群广石记需段研界拉林律叫且究观越织装影算低持音众书布复容儿须际商非验连断深难近矿千周委素技备半办青省列习响约支般史感劳便团往酸历市克何除消构府称太准精值号率族维划选标写存候毛亲快效斯院查江型眼王按格养易置派层片始却专状育厂京识适属圆包火住调满县局照参红细引听该铁价严龙飞";

fn english(vocabulary: &Zipf, rng: &mut StdRng, positive: bool) -> String {
    let mut words: Vec<String> = (0..18).map(|_| vocabulary.draw(rng).to_string()).collect();
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

fn chinese(vocabulary: &Zipf, rng: &mut StdRng, positive: bool) -> String {
    let mut s = String::new();
    while s.chars().count() < 36 {
        s.push_str(vocabulary.draw(rng));
    }
    s.push_str(if positive {
        "，很满意"
    } else {
        "，不满意"
    });
    s
}

fn comments(n: usize, seed: u64) -> Vec<(String, bool)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let en = english_vocabulary(&mut rng);
    let zh = chinese_vocabulary(&mut rng);
    (0..n)
        .map(|i| {
            let positive = rng.random_bool(0.6);
            let text = if i % 2 == 0 {
                english(&en, &mut rng, positive)
            } else {
                chinese(&zh, &mut rng, positive)
            };
            (text, positive != rng.random_bool(0.1))
        })
        .collect()
}

/// This process's user + system CPU time, from /proc (Linux; 0 elsewhere): the machine
/// may be shared, and CPU time says what the fit cost whatever else ran.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // Fields after the command name (which may hold spaces) start at ")".
            let rest = s.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
            Some(ticks / 100.0)
        })
        .unwrap_or(0.0)
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
    let cpu_before = cpu_seconds();
    let t = Instant::now();
    let mut params = TextParams::default();
    if let Some(rows) = std::env::var("TEXT_BENCH_MAX_FIT_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        params.max_fit_rows = rows;
    }
    let fitted = TextModel::fit(&training, &params);
    let seconds = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu_before;
    match fitted {
        Ok((model, report)) => {
            println!(
                "fit on {n} comments ({threads} threads, max_fit_rows {}): {seconds:.1} s wall, {cpu:.1} s CPU",
                params.max_fit_rows
            );
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
