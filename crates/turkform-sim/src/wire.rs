//! The AWS JSON 1.1 wire format: typed access to request members (with the service's
//! validation errors) and the error bodies both botocore and smithy-rs parse.

use serde_json::{Map, Value};

/// An error answered to an API call. Rendered by [`ApiError::render`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// The modeled `RequestError` (HTTP 400) with a `TurkErrorCode`.
    Request { turk_code: String, message: String },
    /// The modeled `ServiceFault` (HTTP 500).
    Fault { message: String },
    /// An error raised by the AWS front end before the service sees the call
    /// (`UnrecognizedClientException`, `SerializationException`, ...): `__type` + `message`.
    Front {
        status: u16,
        kind: &'static str,
        message: String,
    },
}

impl ApiError {
    /// A `RequestError` with `AWS.MechanicalTurk.<code>`.
    pub fn request(code: &str, message: impl Into<String>) -> ApiError {
        ApiError::Request {
            turk_code: format!("AWS.MechanicalTurk.{code}"),
            message: message.into(),
        }
    }

    /// `AWS.MechanicalTurk.InvalidParameterValue`.
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::request("InvalidParameterValue", message)
    }

    /// A value that breaks a shape constraint, worded like AWS's validation messages.
    pub fn constraint(member: &str, value: &str, constraint: &str) -> ApiError {
        ApiError::invalid(format!(
            "1 validation error detected: Value '{value}' at '{member}' failed to satisfy constraint: {constraint}"
        ))
    }

    /// A JSON value of the wrong type: the front end cannot even deserialize it.
    pub fn serialization(message: impl Into<String>) -> ApiError {
        ApiError::Front {
            status: 400,
            kind: "SerializationException",
            message: message.into(),
        }
    }

    pub fn hit_does_not_exist(hit_id: &str) -> ApiError {
        ApiError::request("HITDoesNotExist", format!("Hit {hit_id} does not exist."))
    }

    /// The HTTP status and JSON body. Service messages end with ` (<epoch-millis>)` like MTurk's.
    pub fn render(&self, now_ms: i64) -> (u16, String) {
        match self {
            ApiError::Request { turk_code, message } => (
                400,
                serde_json::json!({
                    "__type": "RequestError",
                    "Message": format!("{message} ({now_ms})"),
                    "TurkErrorCode": turk_code,
                })
                .to_string(),
            ),
            ApiError::Fault { message } => (
                500,
                serde_json::json!({
                    "__type": "ServiceFault",
                    "Message": format!("{message} ({now_ms})"),
                    "TurkErrorCode": "AWS.MechanicalTurk.ServiceFault",
                })
                .to_string(),
            ),
            ApiError::Front {
                status,
                kind,
                message,
            } => {
                // The AWS front end names its own errors with the coral namespace; both botocore
                // and smithy-rs keep only the part after '#'. Throttling is sent bare, as seen.
                let kind = if *kind == "ThrottlingException" {
                    (*kind).to_owned()
                } else {
                    format!("com.amazon.coral.service#{kind}")
                };
                (
                    *status,
                    serde_json::json!({ "__type": kind, "message": message }).to_string(),
                )
            }
        }
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

/// Typed, validating access to the members of a request object.
pub struct Input<'a> {
    obj: &'a Map<String, Value>,
}

fn type_error(name: &str, want: &str) -> ApiError {
    ApiError::serialization(format!(
        "Value for member '{name}' cannot be read: expected {want}"
    ))
}

fn required(name: &str) -> ApiError {
    ApiError::constraint(name, "null", "Member must not be null")
}

impl<'a> Input<'a> {
    pub fn new(obj: &'a Map<String, Value>) -> Input<'a> {
        Input { obj }
    }

    fn get(&self, name: &str) -> Option<&'a Value> {
        match self.obj.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    pub fn str_opt(&self, name: &str) -> ApiResult<Option<&'a str>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(type_error(name, "a string")),
        }
    }

    pub fn str_req(&self, name: &str) -> ApiResult<&'a str> {
        self.str_opt(name)?.ok_or_else(|| required(name))
    }

    pub fn i64_opt(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_i64() {
                Some(v) => Ok(Some(v)),
                None => Err(type_error(name, "an integer")),
            },
            Some(_) => Err(type_error(name, "a number")),
        }
    }

    pub fn i64_req(&self, name: &str) -> ApiResult<i64> {
        self.i64_opt(name)?.ok_or_else(|| required(name))
    }

    /// An `Integer` member (32-bit in the model).
    pub fn i32_opt(&self, name: &str) -> ApiResult<Option<i64>> {
        match self.i64_opt(name)? {
            Some(v) if i32::try_from(v).is_err() => Err(type_error(name, "a 32-bit integer")),
            other => Ok(other),
        }
    }

    pub fn bool_opt(&self, name: &str) -> ApiResult<Option<bool>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(type_error(name, "a boolean")),
        }
    }

    /// A `Timestamp`: epoch seconds as a JSON number (int or float) -> epoch milliseconds.
    pub fn timestamp_req(&self, name: &str) -> ApiResult<i64> {
        match self.get(name) {
            None => Err(required(name)),
            Some(Value::Number(n)) => n
                .as_f64()
                .filter(|f| f.is_finite() && f.abs() < 1e14)
                .map(|f| (f * 1000.0).round() as i64)
                .ok_or_else(|| type_error(name, "epoch seconds")),
            Some(_) => Err(type_error(name, "epoch seconds as a number")),
        }
    }

    pub fn list_opt(&self, name: &str) -> ApiResult<Option<&'a Vec<Value>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Array(a)) => Ok(Some(a)),
            Some(_) => Err(type_error(name, "a list")),
        }
    }

    pub fn obj_opt(&self, name: &str) -> ApiResult<Option<Input<'a>>> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(Input::new(o))),
            Some(_) => Err(type_error(name, "a structure")),
        }
    }

    pub fn raw(&self, name: &str) -> Option<&'a Value> {
        self.get(name)
    }

    // ---- shape constraints ----

    /// `EntityId`: 1-64 of `[A-Z0-9]`.
    pub fn entity_id_req(&self, name: &str) -> ApiResult<&'a str> {
        let v = self.str_req(name)?;
        check_entity_id(name, v)?;
        Ok(v)
    }

    pub fn entity_id_opt(&self, name: &str) -> ApiResult<Option<&'a str>> {
        let v = self.str_opt(name)?;
        if let Some(v) = v {
            check_entity_id(name, v)?;
        }
        Ok(v)
    }

    /// `CustomerId` (a worker id): 1-64 matching `^A[A-Z0-9]+$`.
    pub fn worker_id_req(&self, name: &str) -> ApiResult<&'a str> {
        let v = self.str_req(name)?;
        check_worker_id(name, v)?;
        Ok(v)
    }

    /// `IdempotencyToken`: 1-64 characters.
    pub fn token_opt(&self, name: &str) -> ApiResult<Option<&'a str>> {
        let v = self.str_opt(name)?;
        if let Some(t) = v {
            let n = t.chars().count();
            if n == 0 {
                return Err(ApiError::constraint(
                    name,
                    t,
                    "Member must have length greater than or equal to 1",
                ));
            }
            if n > 64 {
                return Err(ApiError::constraint(
                    name,
                    t,
                    "Member must have length less than or equal to 64",
                ));
            }
        }
        Ok(v)
    }

    /// `MaxResults` (`ResultSize`, 1-100; MTurk answers 10 per page when it is omitted).
    pub fn max_results(&self) -> ApiResult<usize> {
        match self.i64_opt("MaxResults")? {
            None => Ok(10),
            Some(v) if v < 1 => Err(ApiError::constraint(
                "MaxResults",
                &v.to_string(),
                "Member must have value greater than or equal to 1",
            )),
            Some(v) if v > 100 => Err(ApiError::constraint(
                "MaxResults",
                &v.to_string(),
                "Member must have value less than or equal to 100",
            )),
            Some(v) => Ok(v as usize),
        }
    }

    /// `NextToken` (`PaginationToken`, 1-255 characters).
    pub fn next_token(&self) -> ApiResult<Option<&'a str>> {
        let v = self.str_opt("NextToken")?;
        if let Some(t) = v
            && (t.is_empty() || t.len() > 255)
        {
            return Err(ApiError::constraint(
                "NextToken",
                t,
                "Member must have length between 1 and 255",
            ));
        }
        Ok(v)
    }

    /// A member restricted to an enum.
    pub fn enum_opt(&self, name: &str, allowed: &[&str]) -> ApiResult<Option<&'a str>> {
        let v = self.str_opt(name)?;
        if let Some(s) = v
            && !allowed.contains(&s)
        {
            return Err(enum_error(name, s, allowed));
        }
        Ok(v)
    }

    pub fn enum_req(&self, name: &str, allowed: &[&str]) -> ApiResult<&'a str> {
        self.enum_opt(name, allowed)?.ok_or_else(|| required(name))
    }
}

pub fn enum_error(name: &str, value: &str, allowed: &[&str]) -> ApiError {
    ApiError::constraint(
        name,
        value,
        &format!(
            "Member must satisfy enum value set: [{}]",
            allowed.join(", ")
        ),
    )
}

pub fn check_entity_id(name: &str, v: &str) -> ApiResult<()> {
    if v.is_empty()
        || v.len() > 64
        || !v
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Err(ApiError::constraint(
            name,
            v,
            "Member must satisfy regular expression pattern: ^[A-Z0-9]+$",
        ));
    }
    Ok(())
}

pub fn check_worker_id(name: &str, v: &str) -> ApiResult<()> {
    let ok = v.len() >= 2
        && v.len() <= 64
        && v.starts_with('A')
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !ok {
        return Err(ApiError::constraint(
            name,
            v,
            "Member must satisfy regular expression pattern: ^A[A-Z0-9]+$",
        ));
    }
    Ok(())
}

/// Epoch milliseconds -> the JSON number the SDKs expect (epoch seconds, millisecond fraction).
pub fn timestamp(ms: i64) -> Value {
    if ms % 1000 == 0 {
        Value::from(ms / 1000)
    } else {
        serde_json::Number::from_f64(ms as f64 / 1000.0)
            .map(Value::Number)
            .unwrap_or(Value::Null)
    }
}

/// Opaque pagination tokens: hex of `<list kind>:<last seq>`. Hex keeps them within `[0-9a-f]`,
/// so a token is never mistaken for an id by a regex.
pub fn encode_token(kind: &str, seq: u64) -> String {
    hex::encode(format!("sim1:{kind}:{seq}"))
}

pub fn decode_token(kind: &str, token: &str) -> ApiResult<u64> {
    let bad = || ApiError::invalid(format!("The pagination token '{token}' is not valid."));
    let bytes = hex::decode(token).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let rest = text
        .strip_prefix("sim1:")
        .and_then(|r| r.strip_prefix(kind))
        .and_then(|r| r.strip_prefix(':'))
        .ok_or_else(bad)?;
    rest.parse().map_err(|_| bad())
}
