// The chat template a synthesized llama model carries (tokenizer.chat_template),
// so /v1/chat/completions works on it. ChatML when the vocabulary has its
// special tokens, else plain text headers that need none: a template must not
// rely on markers the tokenizer would split into ordinary pieces.
// gpt-oss files carry none: harmony is rendered by src/tokenizer/harmony.ts.
import { TokenType, type Vocab } from "../tokenizer/vocab.ts";

const CONTENT = "(message.content if message.content is not none else '')";

export const CHATML_TEMPLATE =
  `{%- for message in messages %}{{ '<|im_start|>' + message.role + '\\n' + ${CONTENT} + '<|im_end|>\\n' }}{%- endfor %}` +
  "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}";

export const PLAIN_TEMPLATE =
  `{%- for message in messages %}{{ '### ' + (message.role | capitalize) + ':\\n' + ${CONTENT} + '\\n' }}{%- endfor %}` +
  "{%- if add_generation_prompt %}{{ '### Assistant:\\n' }}{%- endif %}";

/** ChatML if `<|im_start|>` and `<|im_end|>` are control tokens of the vocabulary, else plain text. */
export function synthChatTemplate(vocab: Vocab): string {
  const isSpecial = (text: string) => {
    const id = vocab.tokens.indexOf(text);
    const type = vocab.tokenTypes?.[id];
    // Only these are split out of text whole, so the template's markers become one token each.
    return id >= 0 && (type === TokenType.CONTROL || type === TokenType.USER_DEFINED);
  };
  return isSpecial("<|im_start|>") && isSpecial("<|im_end|>") ? CHATML_TEMPLATE : PLAIN_TEMPLATE;
}
