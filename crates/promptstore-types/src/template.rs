//! What a version holds: the template (text or chat messages) and its variable contract.
//!
//! These value objects are shared by the wire format, the storage encoding and the domain:
//! they *are* the contract of a prompt, so one definition keeps the three from drifting.

use serde::{Deserialize, Serialize};

/// Whether a prompt renders to one text or to a list of chat messages. Fixed at creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PromptKind {
    Text,
    Chat,
}

impl PromptKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PromptKind::Text => "text",
            PromptKind::Chat => "chat",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(PromptKind::Text),
            "chat" => Some(PromptKind::Chat),
            _ => None,
        }
    }
}

/// The template of a version.
///
/// On the wire: `{"type": "text", "text": "..."}` or
/// `{"type": "chat", "messages": [{"role": "system", "content": "..."}, {"placeholder": "history"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Template {
    Text { text: String },
    Chat { messages: Vec<ChatMessage> },
}

impl Template {
    pub fn kind(&self) -> PromptKind {
        match self {
            Template::Text { .. } => PromptKind::Text,
            Template::Chat { .. } => PromptKind::Chat,
        }
    }
}

/// One entry of a chat template: a message whose content is a template, or a placeholder
/// that a list of messages (a variable of type `list`) replaces at render time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged, deny_unknown_fields)]
pub enum ChatMessage {
    Placeholder {
        /// Name of the `list` variable whose messages are inserted here.
        placeholder: String,
    },
    Message {
        /// `system`, `developer`, `user`, `assistant` or `tool`.
        role: String,
        /// The message text, itself a template.
        content: String,
    },
}

/// The chat roles a message template may have.
pub const CHAT_ROLES: &[&str] = &["system", "developer", "user", "assistant", "tool"];

/// A rendered chat message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RenderedMessage {
    pub role: String,
    pub content: String,
}

/// The type of a declared variable, checked at render time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum VarType {
    String,
    Number,
    Boolean,
    /// Any JSON value.
    Json,
    /// A JSON array (for chat placeholders: an array of `{role, content}` objects).
    List,
}

impl VarType {
    pub fn as_str(self) -> &'static str {
        match self {
            VarType::String => "string",
            VarType::Number => "number",
            VarType::Boolean => "boolean",
            VarType::Json => "json",
            VarType::List => "list",
        }
    }
}

fn default_true() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// A declared variable: the typed contract between a prompt and its callers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct VariableSpec {
    pub name: String,
    #[serde(rename = "type")]
    pub var_type: VarType,
    /// A required variable without a default must be given at render time. Default: true.
    #[serde(default = "default_true", skip_serializing_if = "is_true")]
    pub required: bool,
    /// Used when the caller gives no value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub default: Option<serde_json::Value>,
    /// When set, the value must be one of these.
    #[serde(default, rename = "enum", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<Object>>))]
    pub allowed: Option<Vec<serde_json::Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl VariableSpec {
    /// A required variable without default, enum or description.
    pub fn new(name: impl Into<String>, var_type: VarType) -> Self {
        VariableSpec {
            name: name.into(),
            var_type,
            required: true,
            default: None,
            allowed: None,
            description: None,
        }
    }

    /// The same variable, optional.
    pub fn optional(mut self) -> Self {
        self.required = false;
        self
    }
}
