using System.Text;

namespace MLNetTransformerExtensions.Training;

/// <summary>
/// A prompt that frames classification as predicting a word: literal text with the placeholders <c>{text}</c> (the
/// input), <c>{text2}</c> (the second text of a pair) and <c>{mask}</c> (where the label word goes).
/// </summary>
/// <remarks>
/// <para>For a decoder (GPT-2) the label word continues the prompt, so the template ends where the word goes:
/// <c>Review: {text} Sentiment:</c> (a final <c>{mask}</c> is allowed and means the same). For an encoder
/// (BERT, RoBERTa, DistilBERT) the masked-LM head fills one mask: <c>{text} It was {mask}.</c>, where <c>{mask}</c>
/// stands for the tokenizer's own mask token (<c>[MASK]</c>, <c>&lt;mask&gt;</c>), which may also be written out.</para>
/// <para>Write <c>{{</c> and <c>}}</c> for literal braces. The literal pieces and the texts are tokenized separately
/// (the space before a placeholder goes with the text), so a text is truncated by tokens while the template and the
/// mask always survive.</para>
/// </remarks>
/// <example>
/// <code>
/// var template = PromptTemplate.Parse("Review: {text} Sentiment:");
/// </code>
/// </example>
public sealed class PromptTemplate
{
    /// <summary>The input text's placeholder.</summary>
    public const string TextPlaceholder = "{text}";

    /// <summary>The second text's placeholder (sentence pairs).</summary>
    public const string SecondTextPlaceholder = "{text2}";

    /// <summary>The label word's placeholder: the tokenizer's mask token for encoders, the end of the prompt for decoders.</summary>
    public const string MaskPlaceholder = "{mask}";

    private PromptTemplate(string text, IReadOnlyList<TemplatePart> parts)
    {
        Text = text;
        Parts = parts;
        HasSecondText = parts.Any(p => p.Kind == TemplatePartKind.SecondText);
        HasMaskPlaceholder = parts.Any(p => p.Kind == TemplatePartKind.Mask);
    }

    /// <summary>The template as written.</summary>
    public string Text { get; }

    /// <summary>Whether the template places a second text (<c>{text2}</c>): the classifier then takes text pairs.</summary>
    public bool HasSecondText { get; }

    /// <summary>Whether the template has a <c>{mask}</c> placeholder.</summary>
    public bool HasMaskPlaceholder { get; }

    /// <summary>Literal pieces and placeholders in order; adjacent literals are merged.</summary>
    internal IReadOnlyList<TemplatePart> Parts { get; }

    /// <summary>Reads a template and checks its placeholders.</summary>
    /// <param name="template">The template text.</param>
    /// <returns>The parsed template.</returns>
    /// <exception cref="ArgumentException">
    /// The template has no <c>{text}</c>, repeats a placeholder, names an unknown one, or has an unmatched brace.
    /// </exception>
    public static PromptTemplate Parse(string template)
    {
        ArgumentNullException.ThrowIfNull(template);
        var parts = new List<TemplatePart>();
        var literal = new StringBuilder();
        void Flush()
        {
            if (literal.Length > 0)
            {
                parts.Add(new TemplatePart(TemplatePartKind.Literal, literal.ToString()));
                literal.Clear();
            }
        }

        for (var i = 0; i < template.Length; i++)
        {
            var c = template[i];
            if ((c == '{' || c == '}') && i + 1 < template.Length && template[i + 1] == c)
            {
                literal.Append(c);
                i++;
                continue;
            }

            if (c == '}')
            {
                throw Error(template, $"has an unmatched '}}' at character {i}; write '}}}}' for a literal brace");
            }

            if (c != '{')
            {
                literal.Append(c);
                continue;
            }

            var close = template.IndexOf('}', i + 1);
            if (close < 0)
            {
                throw Error(template, $"has an unmatched '{{' at character {i}; write '{{{{' for a literal brace");
            }

            var placeholder = template[i..(close + 1)];
            var kind = placeholder switch
            {
                TextPlaceholder => TemplatePartKind.Text,
                SecondTextPlaceholder => TemplatePartKind.SecondText,
                MaskPlaceholder => TemplatePartKind.Mask,
                _ => throw Error(template, $"has the unknown placeholder '{placeholder}'; the placeholders are {TextPlaceholder}, {SecondTextPlaceholder} and {MaskPlaceholder} (write '{{{{' and '}}}}' for literal braces)"),
            };
            if (parts.Any(p => p.Kind == kind))
            {
                throw Error(template, $"has {placeholder} more than once; each placeholder may appear once");
            }

            Flush();
            parts.Add(new TemplatePart(kind, string.Empty));
            i = close;
        }

        Flush();
        if (!parts.Any(p => p.Kind == TemplatePartKind.Text))
        {
            throw Error(template, $"has no {TextPlaceholder}: it must say where the input text goes, e.g. \"Review: {TextPlaceholder} Sentiment:\"");
        }

        return new PromptTemplate(template, parts);
    }

    /// <summary>The default template: sentiment prompts for single texts, a question-style prompt for pairs.</summary>
    /// <param name="kind">Decoder (the label word follows the prompt) or encoder (the label word fills a mask).</param>
    /// <param name="pairs">Whether rows are text pairs.</param>
    /// <returns><c>Review: {text} Sentiment:</c>, <c>{text} It was {mask}.</c>, <c>{text}\n{text2}\nAnswer:</c> or <c>{text} ? {mask}, {text2}</c>.</returns>
    public static string DefaultFor(ClassifierKind kind, bool pairs) => (kind, pairs) switch
    {
        (ClassifierKind.Decoder, false) => "Review: {text} Sentiment:",
        (ClassifierKind.Decoder, true) => "{text}\n{text2}\nAnswer:",
        (ClassifierKind.EncoderDecoder, false) => "sst2 sentence: {text}",
        (ClassifierKind.EncoderDecoder, true) => "sentence1: {text} sentence2: {text2}",
        (_, false) => "{text} It was {mask}.",
        _ => "{text} ? {mask}, {text2}",
    };

    /// <inheritdoc/>
    public override string ToString() => Text;

    private static ArgumentException Error(string template, string problem) =>
        new($"The prompt template \"{template}\" {problem}.", nameof(template));
}

/// <summary>What a piece of a template is.</summary>
internal enum TemplatePartKind
{
    Literal,
    Text,
    SecondText,
    Mask,
}

/// <summary>A literal piece (its text) or a placeholder.</summary>
internal readonly record struct TemplatePart(TemplatePartKind Kind, string Literal);
