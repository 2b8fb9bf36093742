//! The CPU decoder (`Engine::Cpu`, the default on the CPU) against candle's `Llama`
//! (`Engine::Candle`) on the same weights: the same greedy tokens, the same sampled text.

use crate::tiny;

use candle_core::Device;
use text_generation::{Engine, Generator, Observer, Params};

#[derive(Default)]
struct Ids(Vec<u32>);

impl Observer for Ids {
    fn token_id(&mut self, id: u32) {
        self.0.push(id);
    }
}

fn tokens(g: &Generator, prompt: &str, p: &Params) -> (Vec<u32>, String) {
    let mut ids = Ids::default();
    let out = g.generate(prompt, p, &mut ids).unwrap();
    assert_eq!(ids.0.len(), out.generated_tokens);
    (ids.0, out.text)
}

#[test]
fn cpu_decoder_matches_candle_llama() {
    let dir = tiny::write_model("engines");
    let cpu = Generator::load_with(&dir, &Device::Cpu, Some(Engine::Cpu)).unwrap();
    let candle = Generator::load_with(&dir, &Device::Cpu, Some(Engine::Candle)).unwrap();
    assert_eq!((cpu.engine(), candle.engine()), (Engine::Cpu, Engine::Candle));
    assert_eq!(Generator::load(&dir, &Device::Cpu).unwrap().engine(), Engine::Cpu, "the default on the CPU");

    // A one-word prompt, and a long one (prefill of many tokens at once, then decode).
    let words = tiny::words();
    let long: Vec<&str> = (0..90).map(|i| words[(i * 7 + 3) % words.len()].as_str()).collect();
    for prompt in ["w05".to_owned(), long.join(" ")] {
        let greedy = Params { max_tokens: 60, temperature: 0.0, top_p: None, seed: 1, stop: vec![] };
        let (a, text_a) = tokens(&cpu, &prompt, &greedy);
        let (b, text_b) = tokens(&candle, &prompt, &greedy);
        assert_eq!(a, b, "greedy tokens differ for a {}-word prompt", prompt.split(' ').count());
        assert_eq!(text_a, text_b);
        let sampled = Params { temperature: 0.8, seed: 7, ..greedy };
        assert_eq!(tokens(&cpu, &prompt, &sampled), tokens(&candle, &prompt, &sampled), "seeded sampling");
    }

    // Llama 3 rope scaling is left to candle: the default picks it, and asking for the CPU
    // decoder is a clear error.
    let mut config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    config["rope_scaling"] = serde_json::json!({"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
        "high_freq_factor": 4.0, "original_max_position_embeddings": 1024});
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
    assert_eq!(Generator::load(&dir, &Device::Cpu).unwrap().engine(), Engine::Candle);
    let err = Generator::load_with(&dir, &Device::Cpu, Some(Engine::Cpu)).err().unwrap().to_string();
    assert!(err.contains("rope_scaling"), "{err}");
    tiny::remove(&dir);
}
