//! Request headers as the domain sees them: names in lower case, values that are text. The transport
//! converts its own header type into this one, so verification and ingest never depend on the HTTP stack.

/// The headers of one request, in the order received.
#[derive(Debug, Clone, Default)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    /// From (name, value) pairs; names are matched case-insensitively.
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Headers {
        Headers(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v))
                .collect(),
        )
    }

    /// The first value of header `name`, if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_ignores_case_and_takes_the_first_value() {
        let h = Headers::new([
            ("Content-Type".to_string(), "application/json".to_string()),
            ("x-a".to_string(), "1".to_string()),
            ("X-A".to_string(), "2".to_string()),
        ]);
        assert_eq!(h.get("content-type"), Some("application/json"));
        assert_eq!(h.get("X-a"), Some("1"));
        assert_eq!(h.get("missing"), None);
    }
}
