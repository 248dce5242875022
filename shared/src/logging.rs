//! The functions' log lines in AWS: one JSON object per line, each naming the function, the
//! API request it served (`requestId`, the id of API Gateway's access log line) and the
//! partner it served, once known; Lambda's own invocation id is `awsRequestId`.
//!
//! Tokens and activity details are never logged: no span or event is given them (the e2e test
//! `a_recorded_request_s_log_lines_are_json_and_name_it_but_never_its_token_or_details`
//! reads a recorded request's lines and checks).

use std::fmt;

use crate::config::LogSettings;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The span lambda_runtime opens around each invocation (its `requestId` is Lambda's).
const RUNTIME_SPAN: &str = "Lambda runtime invoke";

/// Writes each event as one JSON object: `level`, `function`, the fields of the spans it is in
/// (outermost first; `request_id` as `requestId`), then its own fields (`message` first).
pub struct JsonLines;

impl<S> FormatEvent<S, JsonFields> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        line.insert(
            "level".into(),
            Value::from(event.metadata().level().as_str()),
        );
        line.insert("function".into(), Value::from(crate::metrics::function()));
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields.as_str())
                else {
                    continue;
                };
                let runtime = span.name() == RUNTIME_SPAN;
                for (name, value) in fields {
                    line.insert(field_name(&name, runtime).into(), value);
                }
            }
        }
        let mut own = EventFields(Map::new());
        event.record(&mut own);
        if let Some(message) = own.0.remove("message") {
            line.insert("message".into(), message);
        }
        for (name, value) in own.0 {
            line.insert(field_name(&name, false).into(), value);
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

fn field_name(name: &str, in_runtime_span: bool) -> &str {
    match name {
        "requestId" if in_runtime_span => "awsRequestId",
        "request_id" => "requestId",
        other => other,
    }
}

struct EventFields(Map<String, Value>);

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), Value::from(format!("{value:?}")));
    }
}

/// Logs: in AWS Lambda (CloudWatch) and wherever `LOG_FORMAT=json`, one JSON object per line
/// ([`JsonLines`]: function, request id, partner); readable text elsewhere.
/// `RUST_LOG` is a level (`info`, the default) or a list of `target=level` directives;
/// `tracing`'s `Targets` filter reads it, which, unlike the env-filter, needs no
/// regular-expression engine in every package.
pub fn init(settings: &LogSettings) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;

    let filter = settings
        .filter
        .as_deref()
        .and_then(|v| v.parse::<Targets>().ok())
        .unwrap_or_else(|| Targets::new().with_default(tracing::Level::INFO));
    let registry = tracing_subscriber::registry();
    let _ = if settings.json {
        let layer = tracing_subscriber::fmt::layer()
            .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
            .event_format(JsonLines);
        registry.with(layer.with_filter(filter)).try_init()
    } else {
        let layer = tracing_subscriber::fmt::layer()
            .with_target(false)
            .without_time();
        registry.with(layer.with_filter(filter)).try_init()
    };
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::prelude::*;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().map_err(|_| io::ErrorKind::Other)?.extend(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn every_line_is_json_naming_the_function_request_and_partner() {
        crate::metrics::set_function("record-activity");
        let out = Lines::default();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(JsonLines)
                .with_writer(out.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let runtime = tracing::info_span!(RUNTIME_SPAN, requestId = "lambda-1");
            let _r = runtime.enter();
            let handler = tracing::info_span!(
                "handle",
                request_id = "api-1",
                partner = tracing::field::Empty
            );
            let _h = handler.enter();
            tracing::Span::current().record("partner", "p1");
            tracing::info!(count = 2, "activities recorded");
            tracing::warn!(error = %"disk \"full\"\n", "could not");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["function"], "record-activity");
        assert_eq!(lines[0]["requestId"], "api-1");
        assert_eq!(lines[0]["awsRequestId"], "lambda-1");
        assert_eq!(lines[0]["partner"], "p1");
        assert_eq!(lines[0]["message"], "activities recorded");
        assert_eq!(lines[0]["count"], 2);
        assert_eq!(lines[1]["level"], "WARN");
        assert_eq!(lines[1]["error"], "disk \"full\"\n");
        assert_eq!(lines[1]["partner"], "p1");
    }
}
