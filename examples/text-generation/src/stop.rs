//! Stop strings over streamed text: finds the first stop string and holds back any tail that
//! could still become one, so nothing past a stop string is ever streamed.

/// Tracks the generated text against a set of stop strings.
#[derive(Debug, Default)]
pub struct StopMatcher {
    stops: Vec<String>,
    text: String,
    emitted: usize,
}

/// What [`StopMatcher::push`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum StopState {
    /// No stop string yet; the text that is now safe to stream (may be empty).
    Continue(String),
    /// A stop string was found; the last text to stream (up to, not including, the stop string).
    Stopped(String),
}

impl StopMatcher {
    /// A matcher for `stops` (empty strings are ignored).
    pub fn new(stops: &[String]) -> Self {
        Self { stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(), ..Default::default() }
    }

    /// All text accepted so far (up to the stop string once stopped).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Appends `delta` and says what can be streamed.
    pub fn push(&mut self, delta: &str) -> StopState {
        let search_from = self.emitted;
        self.text.push_str(delta);
        let found = self.stops.iter().filter_map(|s| self.text[search_from..].find(s.as_str())).min();
        if let Some(at) = found {
            self.text.truncate(search_from + at);
            let out = self.text[self.emitted..].to_owned();
            self.emitted = self.text.len();
            return StopState::Stopped(out);
        }
        // Hold back the longest tail that is a proper prefix of some stop string.
        let held = self
            .stops
            .iter()
            .flat_map(|s| (1..s.len()).rev().filter(|&n| s.is_char_boundary(n)).map(move |n| &s[..n]))
            .filter(|p| self.text[self.emitted..].ends_with(p))
            .map(str::len)
            .max()
            .unwrap_or(0);
        let safe = self.text.len() - held;
        let out = self.text[self.emitted..safe].to_owned();
        self.emitted = safe;
        StopState::Continue(out)
    }

    /// Ends the text without a stop string: returns whatever was held back.
    pub fn finish(&mut self) -> String {
        let out = self.text[self.emitted..].to_owned();
        self.emitted = self.text.len();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stops(s: &[&str]) -> StopMatcher {
        StopMatcher::new(&s.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn stop_string_split_over_deltas_is_never_streamed() {
        let mut m = stops(&["END"]);
        assert_eq!(m.push("hello E"), StopState::Continue("hello ".into()));
        assert_eq!(m.push("N"), StopState::Continue(String::new()));
        assert_eq!(m.push("Dgame"), StopState::Stopped("".into()));
        assert_eq!(m.text(), "hello ");
    }

    #[test]
    fn a_false_start_is_released_and_the_earliest_stop_wins() {
        let mut m = stops(&["xyz", "b"]);
        assert_eq!(m.push("ax"), StopState::Continue("a".into()));
        assert_eq!(m.push("y1"), StopState::Continue("xy1".into()));
        assert_eq!(m.push("cxyzab"), StopState::Stopped("c".into()));
        assert_eq!(m.text(), "axy1c");
    }

    #[test]
    fn finish_flushes_a_held_tail_and_no_stops_stream_everything() {
        let mut m = stops(&["éé"]);
        assert_eq!(m.push("caf é"), StopState::Continue("caf ".into()));
        assert_eq!(m.finish(), "é");
        let mut m = stops(&[""]);
        assert_eq!(m.push("abc"), StopState::Continue("abc".into()));
    }
}
