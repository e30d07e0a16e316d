//! Who acted, for the audit log.

/// Who acted: `cli:<os user>`, `user:<username>`, `client:<id>` or `system`.
#[derive(Debug, Clone)]
pub struct Actor {
    pub name: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn system() -> Self {
        Self {
            name: "system".into(),
            ip: None,
        }
    }

    pub fn cli() -> Self {
        let user = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self {
            name: format!("cli:{user}"),
            ip: None,
        }
    }
}
