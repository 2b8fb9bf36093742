//! The publishing guide's rules for `hub.json` and `tests.json`, over parsed JSON, so that
//! every problem can name its JSON path (docs/hub.md lists each rule and its source).

use super::report::{Findings, Report};
use serde_json::{Map, Value};
use std::path::Path;

/// `category` values the guide allows.
pub const CATEGORIES: &[&str] = &["audio", "embedding", "language", "video", "image"];

/// The GPU pools of the docs' GPU types page (`gpuIds` entries), with one GPU ID of each:
/// the one `hub tests` writes as the test's `gpuTypeId`.
pub const GPU_POOLS: &[(&str, &str)] = &[
    ("AMPERE_16", "NVIDIA RTX A4000"),
    ("AMPERE_24", "NVIDIA RTX A5000"),
    ("ADA_24", "NVIDIA GeForce RTX 4090"),
    ("AMPERE_48", "NVIDIA RTX A6000"),
    ("ADA_48_PRO", "NVIDIA L40S"),
    ("AMPERE_80", "NVIDIA A100 80GB PCIe"),
    ("ADA_80_PRO", "NVIDIA H100 80GB HBM3"),
    ("HOPPER_141", "NVIDIA H200"),
];

/// GPU IDs of the docs' GPU types page (table of 2026-02-12). A name outside it is a warning,
/// not an error: the list grows.
pub const GPU_IDS: &[&str] = &[
    "AMD Instinct MI300X OAM",
    "NVIDIA A100 80GB PCIe",
    "NVIDIA A100-SXM4-80GB",
    "NVIDIA A30",
    "NVIDIA A40",
    "NVIDIA B200",
    "NVIDIA B300 SXM6 AC",
    "NVIDIA GeForce RTX 3070",
    "NVIDIA GeForce RTX 3080",
    "NVIDIA GeForce RTX 3080 Ti",
    "NVIDIA GeForce RTX 3090",
    "NVIDIA GeForce RTX 3090 Ti",
    "NVIDIA GeForce RTX 4070 Ti",
    "NVIDIA GeForce RTX 4080",
    "NVIDIA GeForce RTX 4080 SUPER",
    "NVIDIA GeForce RTX 4090",
    "NVIDIA GeForce RTX 5080",
    "NVIDIA GeForce RTX 5090",
    "NVIDIA H100 80GB HBM3",
    "NVIDIA H100 NVL",
    "NVIDIA H100 PCIe",
    "NVIDIA H200",
    "NVIDIA H200 NVL",
    "NVIDIA L4",
    "NVIDIA L40",
    "NVIDIA L40S",
    "NVIDIA RTX 2000 Ada Generation",
    "NVIDIA RTX 4000 Ada Generation",
    "NVIDIA RTX 4000 SFF Ada Generation",
    "NVIDIA RTX 5000 Ada Generation",
    "NVIDIA RTX 6000 Ada Generation",
    "NVIDIA RTX A2000",
    "NVIDIA RTX A4000",
    "NVIDIA RTX A4500",
    "NVIDIA RTX A5000",
    "NVIDIA RTX A6000",
    "NVIDIA RTX PRO 4500 Blackwell",
    "NVIDIA RTX PRO 6000 Blackwell Max-Q Workstation Edition",
    "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 1g.24gb",
    "NVIDIA RTX PRO 6000 Blackwell Server Edition MIG 2g.48gb",
    "NVIDIA RTX PRO 6000 Blackwell Server Edition",
    "NVIDIA RTX PRO 6000 Blackwell Workstation Edition",
    "Tesla V100-PCIE-16GB",
    "Tesla V100-SXM2-16GB",
    "Tesla V100-SXM2-32GB",
];

/// `type` values of an env input.
const INPUT_TYPES: &[&str] = &["string", "number", "boolean", "huggingface"];

/// Checks a parsed `hub.json`; `file` names it in the problems.
pub fn check_hub(hub: &Value, file: &Path) -> Report {
    let mut f = Findings::new(file);
    let Some(top) = object(&mut f, "$", hub) else { return f.report };
    known_fields(&mut f, "$", top, &["title", "description", "type", "category", "iconUrl", "config"]);
    non_empty_string(&mut f, "$", top, "title", true);
    non_empty_string(&mut f, "$", top, "description", true);
    match top.get("type") {
        None => f.error("$", "`type` is required: \"serverless\""),
        Some(Value::String(s)) if s == "serverless" => {}
        Some(v) => f.error("$.type", format!("must be \"serverless\", not {v}")),
    }
    match top.get("category") {
        None => f.error("$", format!("`category` is required: one of {}", quoted(CATEGORIES))),
        Some(Value::String(s)) if CATEGORIES.contains(&s.as_str()) => {}
        Some(v) => f.error("$.category", format!("{v} is not one of {}", quoted(CATEGORIES))),
    }
    if let Some(icon) = top.get("iconUrl") {
        match icon.as_str().map(url::Url::parse) {
            Some(Ok(u)) if matches!(u.scheme(), "http" | "https") => {}
            _ => f.error("$.iconUrl", format!("must be an http(s) URL, not {icon}")),
        }
    }
    match top.get("config") {
        None => f.error("$", "`config` is required (runsOn, containerDiskInGb, ...)"),
        Some(config) => check_config(&mut f, config),
    }
    f.report
}

fn check_config(f: &mut Findings<'_>, config: &Value) {
    let Some(c) = object(f, "$.config", config) else { return };
    known_fields(
        f,
        "$.config",
        c,
        &[
            "runsOn",
            "endpointType",
            "containerDiskInGb",
            "cpuFlavor",
            "gpuCount",
            "gpuIds",
            "allowedCudaVersions",
            "env",
            "presets",
        ],
    );
    let runs_on = match c.get("runsOn") {
        None => {
            f.error("$.config", "`runsOn` is required: \"GPU\" or \"CPU\"");
            None
        }
        Some(Value::String(s)) if s == "GPU" || s == "CPU" => Some(s.as_str()),
        Some(v) => {
            f.error("$.config.runsOn", format!("must be \"GPU\" or \"CPU\", not {v}"));
            None
        }
    };
    if let Some(t) = c.get("endpointType") {
        if t != "LB" {
            f.error(
                "$.config.endpointType",
                format!("the only value is \"LB\" (a load-balancing endpoint), not {t}"),
            );
        }
    }
    positive_integer(f, "$.config", c, "containerDiskInGb", true);
    match runs_on {
        Some("CPU") => {
            cpu_flavor(f, "$.config", c);
            for key in ["gpuCount", "gpuIds"] {
                if c.contains_key(key) {
                    f.warn(&format!("$.config.{key}"), "is for runsOn \"GPU\"; this listing runs on CPUs");
                }
            }
        }
        Some("GPU") => {
            positive_integer(f, "$.config", c, "gpuCount", true);
            gpu_ids(f, c);
            if c.contains_key("cpuFlavor") {
                f.warn("$.config.cpuFlavor", "is for runsOn \"CPU\"; this listing runs on GPUs");
            }
        }
        _ => {}
    }
    cuda_versions(f, "$.config", c);
    let keys = match c.get("env") {
        Some(env) => check_env(f, env),
        None => Vec::new(),
    };
    if let Some(presets) = c.get("presets") {
        check_presets(f, presets, &keys);
    }
}

/// `cpuFlavor`: a flavor id like `cpu3c`, `cpu5c` or `cpu3g`, optionally with its size
/// (`cpu3g-4-16`: 4 vCPUs, 16 GB).
fn cpu_flavor(f: &mut Findings<'_>, at: &str, c: &Map<String, Value>) {
    match c.get("cpuFlavor") {
        None => f.error(at, "`cpuFlavor` is required when runsOn is \"CPU\" (e.g. \"cpu3c-2-4\")"),
        Some(Value::String(s)) if is_cpu_flavor(s) => {}
        Some(v) => f.error(
            &format!("{at}.cpuFlavor"),
            format!(
                "{v} is not a CPU flavor: cpu3c, cpu3g or cpu5c, optionally with vCPUs and GB (cpu3c-2-4)"
            ),
        ),
    }
}

fn is_cpu_flavor(s: &str) -> bool {
    let mut parts = s.split('-');
    let family = parts.next().unwrap_or_default();
    let Some(gen) = family.strip_prefix("cpu") else { return false };
    let digits = gen.chars().take_while(char::is_ascii_digit).count();
    let letters = &gen[digits..];
    let sizes: Vec<&str> = parts.collect();
    digits > 0
        && !letters.is_empty()
        && letters.chars().all(|c| c.is_ascii_lowercase())
        && (sizes.is_empty() || (sizes.len() == 2 && sizes.iter().all(|n| is_number(n))))
}

fn is_number(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_digit())
}

/// `gpuIds`: comma-separated pool ids or GPU ids, a leading `-` excluding one.
fn gpu_ids(f: &mut Findings<'_>, c: &Map<String, Value>) {
    let ids = match c.get("gpuIds") {
        None => {
            f.error(
                "$.config",
                "`gpuIds` is required when runsOn is \"GPU\" (pool ids such as \"AMPERE_16\")",
            );
            return;
        }
        Some(Value::String(s)) => s,
        Some(v) => {
            f.error("$.config.gpuIds", format!("must be a comma-separated string of pool ids, not {v}"));
            return;
        }
    };
    let mut included = 0;
    for entry in ids.split(',').map(str::trim) {
        if entry.is_empty() {
            f.error("$.config.gpuIds", format!("{ids:?} has an empty entry"));
            continue;
        }
        let name = entry.strip_prefix('-').map(str::trim).unwrap_or(entry);
        if !entry.starts_with('-') {
            included += 1;
        }
        if !GPU_POOLS.iter().any(|(pool, _)| *pool == name) && !GPU_IDS.contains(&name) {
            f.warn(
                "$.config.gpuIds",
                format!("{name:?} is neither a GPU pool nor a GPU ID of the docs' list"),
            );
        }
    }
    if included == 0 && !ids.trim().is_empty() {
        f.error("$.config.gpuIds", "names no GPU to run on, only exclusions");
    }
}

fn cuda_versions(f: &mut Findings<'_>, at: &str, c: &Map<String, Value>) {
    let Some(v) = c.get("allowedCudaVersions") else { return };
    let path = format!("{at}.allowedCudaVersions");
    let Some(list) = v.as_array() else {
        f.error(&path, format!("must be an array of version strings (\"12.4\"), not {v}"));
        return;
    };
    for (i, item) in list.iter().enumerate() {
        let ok = item.as_str().is_some_and(|s| {
            let mut it = s.split('.');
            let (a, b, rest) = (it.next(), it.next(), it.next());
            a.is_some_and(is_number) && b.is_some_and(is_number) && rest.is_none()
        });
        if !ok {
            f.error(&format!("{path}[{i}]"), format!("{item} is not a CUDA version string like \"12.4\""));
        }
    }
}

/// Checks `config.env`; returns the keys it defines.
fn check_env(f: &mut Findings<'_>, env: &Value) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    let Some(list) = env.as_array() else {
        f.error(
            "$.config.env",
            format!("must be an array of {{key, value}} or {{key, input}} entries, not {env}"),
        );
        return keys;
    };
    for (i, entry) in list.iter().enumerate() {
        let at = format!("$.config.env[{i}]");
        let Some(e) = object(f, &at, entry) else { continue };
        known_fields(f, &at, e, &["key", "value", "input"]);
        match e.get("key").and_then(Value::as_str) {
            Some(k) if is_env_name(k) => {
                if keys.iter().any(|seen| seen == k) {
                    f.error(&format!("{at}.key"), format!("{k:?} is defined twice"));
                }
                keys.push(k.to_owned());
            }
            Some(k) => f.error(&format!("{at}.key"), format!("{k:?} is not an environment variable name")),
            None => f.error(&at, "`key` (the variable's name) is required"),
        }
        match (e.get("value"), e.get("input")) {
            (Some(_), Some(_)) => {
                f.error(&at, "has both `value` (a fixed value) and `input` (a field for the user)")
            }
            (None, None) => f.error(&at, "needs `value` (a fixed value) or `input` (a field for the user)"),
            (Some(v), None) if !v.is_string() => {
                f.error(
                    &format!("{at}.value"),
                    format!("must be a string (environment values are text), not {v}"),
                );
            }
            (Some(_), None) => {}
            (None, Some(input)) => check_input(f, &format!("{at}.input"), input),
        }
    }
    keys
}

fn is_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One env `input`: a string, number, boolean, Hugging Face or option field.
fn check_input(f: &mut Findings<'_>, at: &str, input: &Value) {
    let Some(i) = object(f, at, input) else { return };
    known_fields(
        f,
        at,
        i,
        &[
            "name",
            "type",
            "description",
            "default",
            "advanced",
            "required",
            "options",
            "min",
            "max",
            "trueValue",
            "falseValue",
            // Not in the guide; the Hub's own listings use it (runpod-workers/worker-mastra).
            "sensitive",
        ],
    );
    non_empty_string(f, at, i, "name", true);
    if !i.contains_key("description") {
        f.warn(at, "has no `description` (the listing shows it under the field)");
    } else {
        non_empty_string(f, at, i, "description", false);
    }
    for flag in ["advanced", "required", "sensitive"] {
        if let Some(v) = i.get(flag) {
            if !v.is_boolean() {
                f.error(&format!("{at}.{flag}"), format!("must be true or false, not {v}"));
            }
        }
    }
    let ty = match i.get("type") {
        Some(Value::String(t)) if INPUT_TYPES.contains(&t.as_str()) => t.as_str(),
        Some(v) => {
            f.error(&format!("{at}.type"), format!("{v} is not one of {}", quoted(INPUT_TYPES)));
            return;
        }
        None => {
            f.error(at, format!("`type` is required: one of {}", quoted(INPUT_TYPES)));
            return;
        }
    };
    let default = i.get("default");
    let only_for = |f: &mut Findings<'_>, keys: &[&str], for_type: &str| {
        for k in keys {
            if i.contains_key(*k) {
                f.error(&format!("{at}.{k}"), format!("is for type \"{for_type}\", not \"{ty}\""));
            }
        }
    };
    if ty != "number" {
        only_for(f, &["min", "max"], "number");
    }
    if ty != "boolean" {
        only_for(f, &["trueValue", "falseValue"], "boolean");
    }
    if ty != "string" {
        only_for(f, &["options"], "string");
    }
    match ty {
        "string" | "huggingface" => {
            if let Some(d) = default.filter(|d| !d.is_string()) {
                f.error(&format!("{at}.default"), format!("must be a string for type \"{ty}\", not {d}"));
            }
            if let Some(options) = i.get("options") {
                check_options(f, at, options, default);
            }
        }
        "number" => {
            let bound = |f: &mut Findings<'_>, key: &str| match i.get(key) {
                None => None,
                Some(Value::Number(n)) => n.as_f64(),
                Some(v) => {
                    f.error(&format!("{at}.{key}"), format!("must be a number, not {v}"));
                    None
                }
            };
            let (min, max) = (bound(f, "min"), bound(f, "max"));
            if let (Some(lo), Some(hi)) = (min, max) {
                if lo > hi {
                    f.error(at, format!("min {lo} is above max {hi}"));
                }
            }
            match default {
                None => {}
                Some(Value::Number(n)) => {
                    let x = n.as_f64().unwrap_or_default();
                    if min.is_some_and(|lo| x < lo) || max.is_some_and(|hi| x > hi) {
                        f.error(&format!("{at}.default"), format!("{x} is outside min..max"));
                    }
                }
                Some(d) => f.error(
                    &format!("{at}.default"),
                    format!("must be a number for type \"number\", not {d}"),
                ),
            }
        }
        "boolean" => {
            if let Some(d) = default.filter(|d| !d.is_boolean()) {
                f.error(
                    &format!("{at}.default"),
                    format!("must be true or false for type \"boolean\", not {d}"),
                );
            }
            let true_value = i.get("trueValue");
            let false_value = i.get("falseValue");
            for (key, v) in [("trueValue", true_value), ("falseValue", false_value)] {
                if let Some(v) = v.filter(|v| !v.is_string()) {
                    f.error(
                        &format!("{at}.{key}"),
                        format!("must be a string (the variable's value), not {v}"),
                    );
                }
            }
            if true_value.is_some() != false_value.is_some() {
                f.warn(at, "sets only one of `trueValue` and `falseValue`");
            } else if true_value.is_some() && true_value == false_value {
                f.error(at, "`trueValue` and `falseValue` are the same: the variable cannot tell them apart");
            }
        }
        _ => {}
    }
}

fn check_options(f: &mut Findings<'_>, at: &str, options: &Value, default: Option<&Value>) {
    let path = format!("{at}.options");
    let Some(list) = options.as_array().filter(|l| !l.is_empty()) else {
        f.error(&path, format!("must be a non-empty array of {{label, value}}, not {options}"));
        return;
    };
    let mut values: Vec<&str> = Vec::new();
    for (n, option) in list.iter().enumerate() {
        let p = format!("{path}[{n}]");
        let Some(o) = object(f, &p, option) else { continue };
        known_fields(f, &p, o, &["label", "value"]);
        non_empty_string(f, &p, o, "label", true);
        match o.get("value") {
            Some(Value::String(v)) => {
                if values.contains(&v.as_str()) {
                    f.error(&format!("{p}.value"), format!("{v:?} is offered twice"));
                }
                values.push(v);
            }
            Some(v) => f.error(&format!("{p}.value"), format!("must be a string, not {v}")),
            None => f.error(&p, "`value` is required"),
        }
    }
    if let Some(Value::String(d)) = default {
        if !values.contains(&d.as_str()) {
            f.error(&format!("{at}.default"), format!("{d:?} is not one of the options' values"));
        }
    }
}

fn check_presets(f: &mut Findings<'_>, presets: &Value, keys: &[String]) {
    let Some(list) = presets.as_array() else {
        f.error("$.config.presets", format!("must be an array of {{name, defaults}}, not {presets}"));
        return;
    };
    for (i, preset) in list.iter().enumerate() {
        let at = format!("$.config.presets[{i}]");
        let Some(p) = object(f, &at, preset) else { continue };
        known_fields(f, &at, p, &["name", "defaults"]);
        non_empty_string(f, &at, p, "name", true);
        match p.get("defaults") {
            Some(Value::Object(d)) => {
                for (k, v) in d {
                    let path = format!("{at}.defaults.{k}");
                    if !(v.is_string() || v.is_number() || v.is_boolean()) {
                        f.error(&path, format!("must be a string, number or boolean, not {v}"));
                    }
                    if !keys.iter().any(|key| key == k) {
                        f.warn(&path, format!("{k} is not a variable of config.env"));
                    }
                }
            }
            Some(v) => {
                f.error(&format!("{at}.defaults"), format!("must be an object of variable values, not {v}"))
            }
            None => f.error(&at, "`defaults` is required (variable name to value)"),
        }
    }
}

/// Checks a parsed `tests.json`; `hub` (the listing's `hub.json`, when it parsed) says whether
/// the test machine must be a GPU or a CPU one.
pub fn check_tests(tests: &Value, hub: Option<&Value>, file: &Path) -> Report {
    let mut f = Findings::new(file);
    let Some(top) = object(&mut f, "$", tests) else { return f.report };
    known_fields(&mut f, "$", top, &["tests", "config"]);
    match top.get("tests") {
        None => f.error("$", "`tests` is required: an array of {name, input, timeout}"),
        Some(Value::Array(list)) if list.is_empty() => {
            f.error("$.tests", "has no test: the Hub needs at least one")
        }
        Some(Value::Array(list)) => {
            let mut names: Vec<&str> = Vec::new();
            for (i, case) in list.iter().enumerate() {
                let at = format!("$.tests[{i}]");
                let Some(c) = object(&mut f, &at, case) else { continue };
                known_fields(&mut f, &at, c, &["name", "input", "timeout"]);
                match c.get("name") {
                    Some(Value::String(n)) if !n.trim().is_empty() => {
                        if names.contains(&n.as_str()) {
                            f.error(&format!("{at}.name"), format!("{n:?} names two tests"));
                        }
                        names.push(n);
                    }
                    Some(v) => f.error(&format!("{at}.name"), format!("must be a non-empty string, not {v}")),
                    None => f.error(&at, "`name` is required"),
                }
                match c.get("input") {
                    Some(Value::Object(_)) => {}
                    Some(v) => f.error(
                        &format!("{at}.input"),
                        format!("must be an object (the job's input), not {v}"),
                    ),
                    None => f.error(&at, "`input` (the job's input) is required"),
                }
                if c.contains_key("timeout") {
                    positive_integer(&mut f, &at, c, "timeout", false);
                    if let Some(ms) = c.get("timeout").and_then(Value::as_u64).filter(|ms| *ms < 1000) {
                        f.warn(
                            &format!("{at}.timeout"),
                            format!("is in milliseconds: {ms} ms is under a second"),
                        );
                    }
                }
            }
        }
        Some(v) => f.error("$.tests", format!("must be an array of {{name, input, timeout}}, not {v}")),
    }
    let runs_on = hub.and_then(|h| h.pointer("/config/runsOn")).and_then(Value::as_str);
    match top.get("config") {
        None => f.error("$", "`config` is required (the test machine: gpuTypeId and gpuCount, or cpuFlavor)"),
        Some(config) => {
            if let Some(c) = object(&mut f, "$.config", config) {
                check_test_config(&mut f, c, runs_on);
            }
        }
    }
    f.report
}

fn check_test_config(f: &mut Findings<'_>, c: &Map<String, Value>, runs_on: Option<&str>) {
    known_fields(f, "$.config", c, &["gpuTypeId", "gpuCount", "cpuFlavor", "env", "allowedCudaVersions"]);
    match runs_on {
        Some("CPU") => {
            cpu_flavor(f, "$.config", c);
            for key in ["gpuTypeId", "gpuCount"] {
                if c.contains_key(key) {
                    f.warn(&format!("$.config.{key}"), "is for GPU tests; hub.json's runsOn is \"CPU\"");
                }
            }
        }
        Some("GPU") => {
            match c.get("gpuTypeId") {
                None => f.error("$.config", "`gpuTypeId` is required: hub.json's runsOn is \"GPU\""),
                Some(Value::String(id)) if GPU_IDS.contains(&id.as_str()) => {}
                Some(Value::String(id)) if GPU_POOLS.iter().any(|(pool, _)| pool == id) => f.error(
                    "$.config.gpuTypeId",
                    format!("{id:?} is a pool (for hub.json's gpuIds); a test names one GPU ID such as \"NVIDIA RTX A5000\""),
                ),
                Some(Value::String(id)) => {
                    f.warn("$.config.gpuTypeId", format!("{id:?} is not a GPU ID of the docs' list"))
                }
                Some(v) => f.error("$.config.gpuTypeId", format!("must be a GPU ID string, not {v}")),
            }
            positive_integer(f, "$.config", c, "gpuCount", true);
            if c.contains_key("cpuFlavor") {
                f.warn("$.config.cpuFlavor", "is for CPU tests; hub.json's runsOn is \"GPU\"");
            }
        }
        _ => {
            if !c.contains_key("gpuTypeId") && !c.contains_key("cpuFlavor") {
                f.error("$.config", "names no test machine: gpuTypeId and gpuCount, or cpuFlavor");
            }
        }
    }
    cuda_versions(f, "$.config", c);
    if let Some(env) = c.get("env") {
        let Some(list) = env.as_array() else {
            f.error("$.config.env", format!("must be an array of {{key, value}}, not {env}"));
            return;
        };
        for (i, entry) in list.iter().enumerate() {
            let at = format!("$.config.env[{i}]");
            let Some(e) = object(f, &at, entry) else { continue };
            known_fields(f, &at, e, &["key", "value"]);
            match e.get("key").and_then(Value::as_str) {
                Some(k) if is_env_name(k) => {}
                Some(k) => {
                    f.error(&format!("{at}.key"), format!("{k:?} is not an environment variable name"))
                }
                None => f.error(&at, "`key` is required"),
            }
            match e.get("value") {
                Some(Value::String(_)) => {}
                Some(v) => f.error(&format!("{at}.value"), format!("must be a string, not {v}")),
                None => f.error(&at, "`value` is required"),
            }
        }
    }
}

fn object<'v>(f: &mut Findings<'_>, at: &str, v: &'v Value) -> Option<&'v Map<String, Value>> {
    let o = v.as_object();
    if o.is_none() {
        f.error(at, format!("must be a JSON object, not {v}"));
    }
    o
}

/// Warns of fields the guide does not name (a typo such as `defualt` is silently ignored
/// otherwise).
fn known_fields(f: &mut Findings<'_>, at: &str, o: &Map<String, Value>, known: &[&str]) {
    for k in o.keys() {
        if !known.contains(&k.as_str()) {
            f.warn(&format!("{at}.{k}"), "is not a field of the publishing guide (ignored by the Hub?)");
        }
    }
}

fn non_empty_string(f: &mut Findings<'_>, at: &str, o: &Map<String, Value>, key: &str, required: bool) {
    match o.get(key) {
        None if required => f.error(at, format!("`{key}` is required")),
        None => {}
        Some(Value::String(s)) if !s.trim().is_empty() => {}
        Some(v) => f.error(&format!("{at}.{key}"), format!("must be a non-empty string, not {v}")),
    }
}

fn positive_integer(f: &mut Findings<'_>, at: &str, o: &Map<String, Value>, key: &str, required: bool) {
    match o.get(key) {
        None if required => f.error(at, format!("`{key}` is required (a whole number)")),
        None => {}
        Some(v) if v.as_u64().is_some_and(|n| n > 0) => {}
        Some(v) => f.error(&format!("{at}.{key}"), format!("must be a whole number above 0, not {v}")),
    }
}

fn quoted(list: &[&str]) -> String {
    list.iter().map(|s| format!("\"{s}\"")).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hub_errors(v: Value) -> Vec<String> {
        messages(check_hub(&v, Path::new("hub.json")), true)
    }

    fn hub_warnings(v: Value) -> Vec<String> {
        messages(check_hub(&v, Path::new("hub.json")), false)
    }

    fn messages(r: Report, errors: bool) -> Vec<String> {
        r.problems
            .iter()
            .filter(|p| (p.severity == super::super::Severity::Error) == errors)
            .map(|p| format!("{}: {}", p.path, p.message))
            .collect()
    }

    fn cpu_hub() -> Value {
        json!({
            "title": "Echo", "description": "Echoes", "type": "serverless", "category": "language",
            "config": {"runsOn": "CPU", "cpuFlavor": "cpu3c-2-4", "containerDiskInGb": 5}
        })
    }

    fn gpu_hub() -> Value {
        json!({
            "title": "Emb", "description": "Embeds", "type": "serverless", "category": "embedding",
            "config": {"runsOn": "GPU", "gpuIds": "AMPERE_16,-NVIDIA RTX A4000", "gpuCount": 1, "containerDiskInGb": 20,
                       "allowedCudaVersions": ["12.4", "12.8"]}
        })
    }

    fn with(mut v: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = if parent.is_empty() { &mut v } else { v.pointer_mut(parent).unwrap() };
        target.as_object_mut().unwrap().insert(key.to_owned(), value);
        v
    }

    fn without(mut v: Value, pointer: &str) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let target = if parent.is_empty() { &mut v } else { v.pointer_mut(parent).unwrap() };
        target.as_object_mut().unwrap().remove(key);
        v
    }

    #[test]
    fn valid_cpu_and_gpu_listings_pass() {
        assert_eq!(hub_errors(cpu_hub()), Vec::<String>::new());
        assert_eq!(hub_errors(gpu_hub()), Vec::<String>::new());
        assert_eq!(hub_warnings(gpu_hub()), Vec::<String>::new());
    }

    #[test]
    fn required_top_level_fields_are_named() {
        for key in ["title", "description", "type", "category", "config"] {
            let errors = hub_errors(without(cpu_hub(), &format!("/{key}")));
            assert_eq!(errors.len(), 1, "{key}: {errors:?}");
            assert!(errors[0].starts_with("$: `") && errors[0].contains(key), "{errors:?}");
        }
        assert_eq!(hub_errors(json!([])), ["$: must be a JSON object, not []"]);
    }

    #[test]
    fn type_category_and_icon_take_the_guides_values() {
        assert_eq!(
            hub_errors(with(cpu_hub(), "/type", json!("pod"))),
            ["$.type: must be \"serverless\", not \"pod\""]
        );
        let e = hub_errors(with(cpu_hub(), "/category", json!("text")));
        assert_eq!(e, ["$.category: \"text\" is not one of \"audio\", \"embedding\", \"language\", \"video\", \"image\""]);
        assert!(hub_errors(with(cpu_hub(), "/iconUrl", json!("https://example.com/i.png"))).is_empty());
        assert_eq!(hub_errors(with(cpu_hub(), "/iconUrl", json!("icon.png"))).len(), 1);
    }

    #[test]
    fn runs_on_decides_the_machine_fields() {
        let e = hub_errors(with(cpu_hub(), "/config/runsOn", json!("TPU")));
        assert_eq!(e, ["$.config.runsOn: must be \"GPU\" or \"CPU\", not \"TPU\""]);
        let e = hub_errors(without(cpu_hub(), "/config/cpuFlavor"));
        assert!(e[0].contains("`cpuFlavor` is required"), "{e:?}");
        let e = hub_errors(with(cpu_hub(), "/config/runsOn", json!("GPU")));
        assert_eq!(e.len(), 2, "gpuCount and gpuIds: {e:?}");
        assert!(hub_warnings(with(cpu_hub(), "/config/runsOn", json!("GPU")))[0].contains("cpuFlavor"));
        assert!(hub_warnings(with(cpu_hub(), "/config/gpuCount", json!(1)))[0].contains("runs on CPUs"));
        for flavor in ["cpu3c", "cpu5c-4-8", "cpu3g-4-16"] {
            assert!(hub_errors(with(cpu_hub(), "/config/cpuFlavor", json!(flavor))).is_empty(), "{flavor}");
        }
        for flavor in ["3c", "cpu3c-4", "cpu-2-4", "CPU3C", ""] {
            assert_eq!(hub_errors(with(cpu_hub(), "/config/cpuFlavor", json!(flavor))).len(), 1, "{flavor}");
        }
    }

    #[test]
    fn gpu_fields_are_checked() {
        let e = hub_errors(with(gpu_hub(), "/config/gpuCount", json!(0)));
        assert_eq!(e, ["$.config.gpuCount: must be a whole number above 0, not 0"]);
        assert_eq!(hub_errors(with(gpu_hub(), "/config/gpuIds", json!("-NVIDIA L4"))).len(), 1);
        assert_eq!(hub_errors(with(gpu_hub(), "/config/gpuIds", json!("AMPERE_16,"))).len(), 1);
        assert_eq!(hub_errors(with(gpu_hub(), "/config/gpuIds", json!(["AMPERE_16"]))).len(), 1);
        let w = hub_warnings(with(gpu_hub(), "/config/gpuIds", json!("AMPERE_17")));
        assert!(w[0].contains("neither a GPU pool nor a GPU ID"), "{w:?}");
        let e = hub_errors(with(gpu_hub(), "/config/allowedCudaVersions", json!(["12", 12.4])));
        assert_eq!(e.len(), 2, "{e:?}");
        let e = hub_errors(with(gpu_hub(), "/config/endpointType", json!("QUEUE")));
        assert_eq!(e.len(), 1);
        assert!(hub_errors(with(gpu_hub(), "/config/endpointType", json!("LB"))).is_empty());
        assert_eq!(hub_errors(with(gpu_hub(), "/config/containerDiskInGb", json!(20.5))).len(), 1);
    }

    fn env(entries: Value) -> Vec<String> {
        hub_errors(with(cpu_hub(), "/config/env", entries))
    }

    #[test]
    fn env_entries_are_a_value_or_an_input() {
        assert!(env(json!([{"key": "A", "value": "1"}])).is_empty());
        assert_eq!(
            env(json!([{"key": "A", "value": 1}])),
            ["$.config.env[0].value: must be a string (environment values are text), not 1"]
        );
        assert_eq!(env(json!([{"key": "A"}])).len(), 1);
        assert_eq!(
            env(json!([{"key": "A", "value": "1", "input": {"name": "A", "type": "string"}}])).len(),
            1
        );
        assert_eq!(env(json!([{"key": "1A", "value": "1"}])).len(), 1);
        assert_eq!(env(json!([{"value": "1"}])).len(), 1);
        let e = env(json!([{"key": "A", "value": "1"}, {"key": "A", "value": "2"}]));
        assert_eq!(e, ["$.config.env[1].key: \"A\" is defined twice"]);
        assert_eq!(env(json!({"A": "1"})).len(), 1);
    }

    #[test]
    fn env_inputs_follow_their_type() {
        let input = |i: Value| env(json!([{"key": "X", "input": i}]));
        assert!(input(
            json!({"name": "X", "type": "string", "description": "d", "default": "a", "advanced": true})
        )
        .is_empty());
        assert!(input(json!({"name": "X", "type": "huggingface", "description": "d", "required": true}))
            .is_empty());
        assert_eq!(input(json!({"name": "X", "type": "text", "description": "d"})).len(), 1);
        assert_eq!(input(json!({"type": "string", "description": "d"})).len(), 1, "name is required");
        assert_eq!(input(json!({"name": "X", "description": "d"})).len(), 1, "type is required");
        assert_eq!(input(json!({"name": "X", "type": "string", "description": "d", "default": 3})).len(), 1);
        assert_eq!(
            input(json!({"name": "X", "type": "string", "description": "d", "advanced": "yes"})).len(),
            1
        );
        // numbers: min <= default <= max
        assert!(input(
            json!({"name": "X", "type": "number", "description": "d", "min": 1, "max": 8, "default": 4})
        )
        .is_empty());
        let e = input(
            json!({"name": "X", "type": "number", "description": "d", "min": 1, "max": 8, "default": 9}),
        );
        assert_eq!(e, ["$.config.env[0].input.default: 9 is outside min..max"]);
        assert_eq!(
            input(json!({"name": "X", "type": "number", "description": "d", "min": 9, "max": 8})).len(),
            1
        );
        assert_eq!(
            input(json!({"name": "X", "type": "number", "description": "d", "default": "4"})).len(),
            1
        );
        assert_eq!(input(json!({"name": "X", "type": "number", "description": "d", "min": "1"})).len(), 1);
        assert_eq!(input(json!({"name": "X", "type": "string", "description": "d", "min": 1})).len(), 1);
        // booleans
        let b = json!({"name": "X", "type": "boolean", "description": "d", "default": true, "trueValue": "1", "falseValue": "0"});
        assert!(input(b).is_empty());
        assert_eq!(
            input(json!({"name": "X", "type": "boolean", "description": "d", "default": "true"})).len(),
            1
        );
        let same =
            json!({"name": "X", "type": "boolean", "description": "d", "trueValue": "1", "falseValue": "1"});
        assert_eq!(input(same).len(), 1);
        // options
        let opts = json!([{"label": "Half", "value": "fp16"}, {"label": "Full", "value": "fp32"}]);
        let o = |default: &str| {
            input(
                json!({"name": "X", "type": "string", "description": "d", "options": opts, "default": default}),
            )
        };
        assert!(o("fp16").is_empty());
        assert_eq!(o("int8"), ["$.config.env[0].input.default: \"int8\" is not one of the options' values"]);
        assert_eq!(input(json!({"name": "X", "type": "string", "description": "d", "options": []})).len(), 1);
        let dup = json!([{"label": "a", "value": "v"}, {"label": "b", "value": "v"}]);
        assert_eq!(
            input(json!({"name": "X", "type": "string", "description": "d", "options": dup})).len(),
            1
        );
        assert_eq!(
            input(json!({"name": "X", "type": "number", "description": "d", "options": opts})).len(),
            1
        );
    }

    #[test]
    fn unknown_fields_and_missing_descriptions_warn() {
        let v = with(
            cpu_hub(),
            "/config/env",
            json!([{"key": "X", "input": {"name": "X", "type": "string", "defualt": "a"}}]),
        );
        let w = hub_warnings(v.clone());
        assert!(w.iter().any(|m| m.starts_with("$.config.env[0].input.defualt:")), "{w:?}");
        assert!(w.iter().any(|m| m.contains("no `description`")), "{w:?}");
        assert!(hub_errors(v).is_empty());
        assert!(hub_warnings(with(cpu_hub(), "/author", json!("me")))[0].starts_with("$.author:"));
    }

    #[test]
    fn presets_set_variables_of_env() {
        let v = with(cpu_hub(), "/config/env", json!([{"key": "A", "value": "1"}]));
        let ok = with(v.clone(), "/config/presets", json!([{"name": "P", "defaults": {"A": 2, "B": true}}]));
        assert!(hub_errors(ok.clone()).is_empty());
        assert_eq!(hub_warnings(ok), ["$.config.presets[0].defaults.B: B is not a variable of config.env"]);
        assert_eq!(hub_errors(with(v.clone(), "/config/presets", json!([{"name": "P"}]))).len(), 1);
        assert_eq!(
            hub_errors(with(v.clone(), "/config/presets", json!([{"name": "P", "defaults": {"A": [1]}}])))
                .len(),
            1
        );
        assert_eq!(hub_errors(with(v, "/config/presets", json!({"name": "P"}))).len(), 1);
    }

    fn tests_errors(t: Value, hub: &Value) -> Vec<String> {
        messages(check_tests(&t, Some(hub), Path::new("tests.json")), true)
    }

    #[test]
    fn tests_need_named_object_inputs_and_ms_timeouts() {
        let cpu = cpu_hub();
        let config = json!({"cpuFlavor": "cpu3c-2-4"});
        let t = |tests: Value| tests_errors(json!({"tests": tests, "config": config}), &cpu);
        assert!(t(json!([{"name": "a", "input": {"x": 1}, "timeout": 10000}])).is_empty());
        assert!(t(json!([{"name": "a", "input": {}}])).is_empty(), "timeout is optional");
        assert_eq!(t(json!([])), ["$.tests: has no test: the Hub needs at least one"]);
        assert_eq!(t(json!([{"input": {}}])), ["$.tests[0]: `name` is required"]);
        assert_eq!(
            t(json!([{"name": "a", "input": "x"}])),
            ["$.tests[0].input: must be an object (the job's input), not \"x\""]
        );
        assert_eq!(t(json!([{"name": "a", "input": {}}, {"name": "a", "input": {}}])).len(), 1);
        assert_eq!(t(json!([{"name": "a", "input": {}, "timeout": -1}])).len(), 1);
        assert_eq!(t(json!([{"name": "a", "input": {}, "timeout": "10s"}])).len(), 1);
        let w = messages(
            check_tests(
                &json!({"tests": [{"name": "a", "input": {}, "timeout": 30}], "config": config}),
                Some(&cpu),
                Path::new("t"),
            ),
            false,
        );
        assert_eq!(w, ["$.tests[0].timeout: is in milliseconds: 30 ms is under a second"]);
    }

    #[test]
    fn the_test_machine_matches_runs_on() {
        let t = |config: Value, hub: &Value| {
            tests_errors(json!({"tests": [{"name": "a", "input": {}}], "config": config}), hub)
        };
        assert!(
            t(json!({"cpuFlavor": "cpu3c-2-4", "env": [{"key": "A", "value": "1"}]}), &cpu_hub()).is_empty()
        );
        assert_eq!(
            t(json!({"gpuTypeId": "NVIDIA L4", "gpuCount": 1}), &cpu_hub()).len(),
            1,
            "a CPU listing needs cpuFlavor"
        );
        assert!(t(json!({"gpuTypeId": "NVIDIA RTX A5000", "gpuCount": 1}), &gpu_hub()).is_empty());
        assert_eq!(t(json!({"gpuTypeId": "NVIDIA RTX A5000"}), &gpu_hub()).len(), 1, "gpuCount");
        let e = t(json!({"gpuTypeId": "AMPERE_24", "gpuCount": 1}), &gpu_hub());
        assert!(e[0].contains("is a pool"), "{e:?}");
        assert_eq!(t(json!({"cpuFlavor": "cpu3c"}), &gpu_hub()).len(), 2, "gpuTypeId and gpuCount");
        assert_eq!(t(json!({"cpuFlavor": "cpu3c", "env": [{"key": "A", "value": 1}]}), &cpu_hub()).len(), 1);
        assert_eq!(t(json!({"cpuFlavor": "cpu3c", "env": [{"key": "A"}]}), &cpu_hub()).len(), 1);
        let e = tests_errors(json!({"tests": [{"name": "a", "input": {}}]}), &cpu_hub());
        assert!(e[0].starts_with("$: `config` is required"), "{e:?}");
        // Without a hub.json to compare with, either machine will do, none will not.
        let alone = |config: Value| {
            messages(
                check_tests(
                    &json!({"tests": [{"name": "a", "input": {}}], "config": config}),
                    None,
                    Path::new("t"),
                ),
                true,
            )
        };
        assert!(alone(json!({"cpuFlavor": "cpu3c"})).is_empty());
        assert_eq!(alone(json!({"env": []})).len(), 1);
    }
}
