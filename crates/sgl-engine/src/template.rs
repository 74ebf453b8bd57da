//! Chat templates: the GGUF's own `tokenizer.chat_template`, rendered with Jinja (minijinja)
//! the way llama-server's Jinja mode renders it, or, for GGUFs without one (like the base test
//! model), a sane fallback chosen by architecture: Gemma's turn format for `gemma*`, ChatML
//! otherwise.

use minijinja::{Environment, Error, ErrorKind, context};

/// Gemma 3's turn format: system text folds into the first user turn, roles alternate,
/// `assistant` is called `model`.
pub const GEMMA_TEMPLATE: &str = "{{ bos_token }}\
{%- if messages[0]['role'] == 'system' -%}\
{%- set first_user_prefix = messages[0]['content'] + '\n\n' -%}\
{%- set loop_messages = messages[1:] -%}\
{%- else -%}\
{%- set first_user_prefix = '' -%}\
{%- set loop_messages = messages -%}\
{%- endif -%}\
{%- for message in loop_messages -%}\
{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}\
{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}\
{%- endif -%}\
{%- set role = 'model' if message['role'] == 'assistant' else message['role'] -%}\
{{ '<start_of_turn>' + role + '\n' + (first_user_prefix if loop.first else '') }}\
{{- message['content'] | trim }}\
{{- '<end_of_turn>\n' }}\
{%- endfor -%}\
{%- if add_generation_prompt -%}{{ '<start_of_turn>model\n' }}{%- endif -%}";

/// ChatML, llama-server's own fallback.
pub const CHATML_TEMPLATE: &str = "{%- for message in messages -%}\
{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}\
{%- endfor -%}\
{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\n' }}{%- endif -%}";

/// A template and the special-token texts it may use.
#[derive(Debug, Clone)]
pub struct ChatTemplate {
    source: String,
    bos_token: String,
    eos_token: String,
}

/// A conversation could not be rendered.
#[derive(Debug, thiserror::Error)]
#[error("chat template: {0}")]
pub struct TemplateError(String);

impl ChatTemplate {
    /// The GGUF's template if it has one, else the fallback for `architecture`.
    pub fn choose(gguf_template: Option<String>, architecture: &str, bos_token: &str, eos_token: &str) -> Self {
        let source = gguf_template.filter(|t| !t.trim().is_empty()).unwrap_or_else(|| {
            if architecture.starts_with("gemma") { GEMMA_TEMPLATE.to_owned() } else { CHATML_TEMPLATE.to_owned() }
        });
        Self { source, bos_token: bos_token.to_owned(), eos_token: eos_token.to_owned() }
    }

    /// Renders `messages` with the generation prompt appended.
    pub fn render(&self, messages: &[(String, String)]) -> Result<String, TemplateError> {
        let mut env = Environment::new();
        env.add_function("raise_exception", |message: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        // Templates that print the date get a fixed one: the prompt, and so the token count,
        // must not depend on when a job runs.
        env.add_function("strftime_now", |_format: String| "01 Jan 2026".to_owned());
        env.add_template("chat", &self.source).map_err(|e| TemplateError(e.to_string()))?;
        let messages: Vec<_> =
            messages.iter().map(|(role, content)| context! { role => role, content => content }).collect();
        let template = env.get_template("chat").map_err(|e| TemplateError(e.to_string()))?;
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => true,
                bos_token => self.bos_token,
                eos_token => self.eos_token,
            })
            .map_err(|e| TemplateError(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    //! The fallbacks render the exact bytes of their formats.

    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items.iter().map(|(r, c)| ((*r).to_owned(), (*c).to_owned())).collect()
    }

    #[test]
    fn gemma_fallback_folds_system_into_the_first_turn() {
        let template = ChatTemplate::choose(None, "gemma3", "<bos>", "<eos>");
        let rendered = template
            .render(&pairs(&[("system", "Be brief."), ("user", " Hi "), ("assistant", "Hello"), ("user", "Bye")]))
            .unwrap();
        assert_eq!(
            rendered,
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n\
             <start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n"
        );
        let broken = template.render(&pairs(&[("user", "a"), ("user", "b")])).unwrap_err();
        assert!(broken.to_string().contains("alternate"), "{broken}");
    }

    #[test]
    fn chatml_for_other_architectures_and_gguf_templates_win() {
        let chatml = ChatTemplate::choose(None, "llama", "<s>", "</s>").render(&pairs(&[("user", "hi")])).unwrap();
        assert_eq!(chatml, "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
        let own = "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}{% if add_generation_prompt %}>{% endif %}";
        let rendered =
            ChatTemplate::choose(Some(own.into()), "gemma3", "<s>", "</s>").render(&pairs(&[("user", "hi")])).unwrap();
        assert_eq!(rendered, "<s>[user]hi>");
        assert!(ChatTemplate::choose(Some("{% if %}".into()), "x", "", "").render(&[]).is_err());
    }
}
