using MLNetTransformerExtensions.Tokenization;

namespace MLNetTransformerExtensions.Training;

/// <summary>One tokenized prompt: its ids (special tokens included) and the position whose prediction is scored.</summary>
/// <param name="Ids">Token ids.</param>
/// <param name="Position">The mask (encoders) or the last prompt token, which predicts the label word (decoders).</param>
/// <param name="Truncated">Whether a text was shortened or a demonstration left out to fit the maximum length.</param>
internal sealed record PromptRow(int[] Ids, int Position, bool Truncated);

/// <summary>
/// Tokenizes prompts: the template's literal pieces and the demonstrations once, the input texts per row; then
/// truncates to the length budget and records the scored position.
/// </summary>
/// <remarks>
/// When a prompt is too long, the demonstrations give way first (their texts are shortened longest first, then the
/// earliest demonstrations are left out, never keeping one whose text was cut to nothing); the input itself is
/// truncated, longest first between <c>{text}</c> and <c>{text2}</c>, only when it does not fit alone. The template,
/// the mask and the label words are never cut.
/// </remarks>
internal sealed class PromptEncoder
{
    private readonly PieceTokenizer _pieces;
    private readonly ClassifierKind _kind;
    private readonly int _budget;
    private readonly int[] _prefix;
    private readonly int[] _suffix;
    private readonly List<Piece> _query;
    private readonly int _queryFixed;
    private readonly List<Segment[]> _demonstrations;

    /// <summary>Compiles a template for a tokenizer.</summary>
    /// <param name="pieces">The tokenizer.</param>
    /// <param name="kind">Decoder (the label word follows the prompt) or encoder (it fills the mask).</param>
    /// <param name="template">The template.</param>
    /// <param name="labelTokens">Each class's label word tokens.</param>
    /// <param name="demonstrations">Demonstrations to put before the prompt.</param>
    /// <param name="separator">Text between demonstrations and before the prompt.</param>
    /// <param name="budget">The longest prompt in tokens, special tokens included.</param>
    /// <exception cref="ArgumentException">The template does not suit the kind, or cannot fit the budget even with empty texts.</exception>
    public PromptEncoder(PieceTokenizer pieces, ClassifierKind kind, PromptTemplate template, IReadOnlyList<int[]> labelTokens,
        IReadOnlyList<Demonstration> demonstrations, string separator, int budget)
    {
        _pieces = pieces;
        _kind = kind;
        _budget = budget;
        (_prefix, _suffix) = SpecialTokens(pieces.Tokenizer);
        if (kind == ClassifierKind.Decoder)
        {
            _suffix = []; // the label word continues the prompt: nothing may come between
        }

        var parts = Arrange(template, kind, pieces.Tokenizer);
        _query = Compile(parts, startsSequence: demonstrations.Count == 0);
        var masks = _query.Sum(p => p.Fixed?.Count(id => id == pieces.Tokenizer.MaskTokenId) ?? 0);
        if (kind == ClassifierKind.Encoder && masks != 1)
        {
            throw new ArgumentException(
                $"The prompt template \"{template}\" has {(masks == 0 ? "no" : masks.ToString(System.Globalization.CultureInfo.InvariantCulture))} mask{(masks > 1 ? "s" : "")}; an encoder's template needs exactly one {PromptTemplate.MaskPlaceholder} (or {pieces.Tokenizer.MaskToken}) where the masked-LM head predicts the label word, e.g. \"{PromptTemplate.DefaultFor(kind, false)}\".",
                nameof(template));
        }

        _queryFixed = _prefix.Length + _suffix.Length + _query.Sum(p => p.Fixed?.Length ?? 0);
        if (_queryFixed > budget)
        {
            throw new ArgumentException(
                $"The prompt template \"{template}\" takes {_queryFixed} tokens without any text (special tokens included), more than the maximum length of {budget}; shorten the template or raise the maximum length.",
                nameof(template));
        }

        var separatorIds = pieces.Encode(separator, startsSequence: false);
        _demonstrations = [.. demonstrations.Select((d, i) =>
            CompileDemonstration(parts, d, labelTokens[d.Label], separatorIds, startsSequence: i == 0))];
    }

    /// <summary>The prompt of one row, truncated to the budget.</summary>
    public PromptRow Encode(string text, string? secondText)
    {
        var texts = new List<int[]>(2);
        foreach (var piece in _query.Where(p => p.Fixed is null))
        {
            var value = piece.Slot == TemplatePartKind.Text ? text : secondText ?? string.Empty;
            texts.Add(_pieces.Encode(piece.Leading + value, piece.StartsSequence));
        }

        var textLengths = texts.Select(t => t.Length).ToArray();
        var room = _budget - _queryFixed;
        var truncated = false;
        if (textLengths.Sum() > room)
        {
            textLengths = LongestFirst(textLengths, textLengths.Sum() - room);
            truncated = true;
        }

        room -= textLengths.Sum();
        var (first, demoTextLengths) = FitDemonstrations(room);
        truncated |= first > 0 || demoTextLengths.Any(l => l.Any(x => x.Cut));

        var ids = new List<int>(_budget);
        ids.AddRange(_prefix);
        for (var d = first; d < _demonstrations.Count; d++)
        {
            var segments = _demonstrations[d];
            var t = 0;
            foreach (var segment in segments)
            {
                ids.AddRange(segment.IsText ? segment.Ids.AsSpan(0, demoTextLengths[d - first][t++].Length) : segment.Ids);
            }
        }

        var position = -1;
        var slot = 0;
        foreach (var piece in _query)
        {
            if (piece.Fixed is null)
            {
                ids.AddRange(texts[slot].AsSpan(0, textLengths[slot]));
                slot++;
                continue;
            }

            if (_kind == ClassifierKind.Encoder && Array.IndexOf(piece.Fixed, _pieces.Tokenizer.MaskTokenId ?? -1) is var mask and >= 0)
            {
                position = ids.Count + mask;
            }

            ids.AddRange(piece.Fixed);
        }

        ids.AddRange(_suffix);
        if (ids.Count == 0)
        {
            // An empty decoder prompt: condition on the end-of-text token, as GPT-2 was trained between documents.
            var tokenizer = _pieces.Tokenizer;
            ids.Add(tokenizer.EosTokenId ?? tokenizer.BosTokenId ?? tokenizer.PadTokenId);
        }

        // An encoder-decoder scores its targets with the decoder, so no position of the prompt is read.
        return new PromptRow([.. ids], _kind switch { ClassifierKind.Decoder => ids.Count - 1, ClassifierKind.EncoderDecoder => 0, _ => position }, truncated);
    }

    /// <summary>
    /// HuggingFace's <c>longest_first</c> over any number of texts: one token at a time from the longest, the later one
    /// on ties (the second text of a pair, as in transformers).
    /// </summary>
    internal static int[] LongestFirst(int[] lengths, int excess)
    {
        var result = (int[])lengths.Clone();
        while (excess > 0)
        {
            var longest = 0;
            for (var i = 1; i < result.Length; i++)
            {
                longest = result[i] >= result[longest] ? i : longest;
            }

            if (result[longest] == 0)
            {
                break;
            }

            // Cut the longest down to the next length in one go (at least one token), so long texts cost no loop per token.
            var next = result.Where((l, i) => i != longest && l < result[longest]).DefaultIfEmpty(0).Max();
            var tied = result.Count(l => l == result[longest]) > 1;
            var cut = tied ? 1 : Math.Min(excess, Math.Max(1, result[longest] - next));
            result[longest] -= cut;
            excess -= cut;
        }

        return result;
    }

    /// <summary>
    /// Which demonstrations fit in <paramref name="room"/> tokens: the latest ones, with their texts shortened longest
    /// first; a demonstration whose text would be cut to nothing is left out instead.
    /// </summary>
    private (int First, List<(int Length, bool Cut)[]> TextLengths) FitDemonstrations(int room)
    {
        for (var first = 0; first < _demonstrations.Count; first++)
        {
            var kept = _demonstrations.Skip(first).ToList();
            var fixedCount = kept.Sum(d => d.Where(s => !s.IsText).Sum(s => s.Ids.Length));
            var original = kept.SelectMany(d => d.Where(s => s.IsText).Select(s => s.Ids.Length)).ToArray();
            if (fixedCount > room)
            {
                continue;
            }

            var lengths = original.Sum() + fixedCount > room ? LongestFirst(original, original.Sum() + fixedCount - room) : original;
            if (lengths.Where((l, i) => l == 0 && original[i] > 0).Any())
            {
                continue;
            }

            var result = new List<(int, bool)[]>();
            var t = 0;
            foreach (var demonstration in kept)
            {
                result.Add([.. demonstration.Where(s => s.IsText).Select(_ => (lengths[t], lengths[t] < original[t++]))]);
            }

            return (first, result);
        }

        return (_demonstrations.Count, []);
    }

    /// <summary>
    /// The template's parts as they are tokenized: an encoder's mask becomes the tokenizer's mask string inside its
    /// literal (so <c>&lt;mask&gt;</c> strips the space before it, as in HuggingFace); a decoder's final mask and trailing
    /// spaces go (the label word brings its own space); the space before a text goes with the text, where byte-level BPE
    /// puts it (<c>Ġword</c>).
    /// </summary>
    private static List<(TemplatePartKind Kind, string Literal, string Leading)> Arrange(PromptTemplate template, ClassifierKind kind, TransformerTokenizer tokenizer)
    {
        var parts = template.Parts.ToList();
        if (kind == ClassifierKind.Decoder)
        {
            if (parts[^1].Kind == TemplatePartKind.Mask)
            {
                parts.RemoveAt(parts.Count - 1);
            }

            if (parts.Any(p => p.Kind == TemplatePartKind.Mask))
            {
                throw new ArgumentException(
                    $"The prompt template \"{template}\" has {PromptTemplate.MaskPlaceholder} before its end, but a decoder predicts the label word after the prompt: end the template where the word goes, e.g. \"{PromptTemplate.DefaultFor(kind, false)}\".",
                    nameof(template));
            }

            if (parts[^1].Kind == TemplatePartKind.Literal)
            {
                parts[^1] = parts[^1] with { Literal = parts[^1].Literal.TrimEnd() };
            }
        }
        else if (kind == ClassifierKind.Encoder || parts.Any(p => p.Kind == TemplatePartKind.Mask))
        {
            // An encoder-decoder's prompt may hold a mask too (BART's <mask>, T5's first sentinel), as in their pretraining.
            var sentinel = kind == ClassifierKind.EncoderDecoder && tokenizer.TokenToId("<extra_id_0>") is not null ? "<extra_id_0>" : null;
            var mask = tokenizer.MaskToken ?? sentinel
                ?? throw new ArgumentException($"The {tokenizer.ModelType} tokenizer has no mask token, so the encoder prompt strategy cannot be used with it.", nameof(tokenizer));
            parts = [.. parts.Select(p => p.Kind == TemplatePartKind.Mask ? new TemplatePart(TemplatePartKind.Literal, mask) : p)];
        }

        var merged = new List<(TemplatePartKind Kind, string Literal, string Leading)>();
        foreach (var part in parts)
        {
            if (part.Kind == TemplatePartKind.Literal && merged.Count > 0 && merged[^1].Kind == TemplatePartKind.Literal)
            {
                merged[^1] = merged[^1] with { Literal = merged[^1].Literal + part.Literal };
                continue;
            }

            var leading = string.Empty;
            if (part.Kind != TemplatePartKind.Literal && merged.Count > 0 && merged[^1].Kind == TemplatePartKind.Literal)
            {
                var before = merged[^1].Literal;
                var trimmed = before.TrimEnd();
                leading = before[trimmed.Length..];
                merged[^1] = merged[^1] with { Literal = trimmed };
            }

            merged.Add((part.Kind, part.Literal, leading));
        }

        return [.. merged.Where(p => p.Kind != TemplatePartKind.Literal || p.Literal.Length > 0)];
    }

    private List<Piece> Compile(List<(TemplatePartKind Kind, string Literal, string Leading)> parts, bool startsSequence) =>
        [.. parts.Select((p, i) => p.Kind == TemplatePartKind.Literal
            ? new Piece(_pieces.Encode(p.Literal, startsSequence && i == 0), p.Kind, string.Empty, false)
            : new Piece(null, p.Kind, p.Leading, startsSequence && i == 0))];

    /// <summary>A demonstration: the template filled with its texts and its label word, then the separator.</summary>
    private Segment[] CompileDemonstration(List<(TemplatePartKind Kind, string Literal, string Leading)> parts, Demonstration demonstration,
        int[] labelWord, int[] separator, bool startsSequence)
    {
        var segments = new List<Segment>();
        foreach (var piece in Compile(parts, startsSequence))
        {
            if (piece.Fixed is null)
            {
                var value = piece.Slot == TemplatePartKind.Text ? demonstration.Text : demonstration.SecondText ?? string.Empty;
                segments.Add(new Segment(_pieces.Encode(piece.Leading + value, piece.StartsSequence), IsText: true));
            }
            else if (_kind == ClassifierKind.Encoder)
            {
                // The answer fills the mask: "... It was great."
                segments.Add(new Segment([.. piece.Fixed.SelectMany(id => id == _pieces.Tokenizer.MaskTokenId ? labelWord : [id])], IsText: false));
            }
            else
            {
                segments.Add(new Segment(piece.Fixed, IsText: false));
            }
        }

        if (_kind == ClassifierKind.Decoder)
        {
            segments.Add(new Segment(labelWord, IsText: false));
        }

        segments.Add(new Segment(separator, IsText: false));
        return [.. segments];
    }

    /// <summary>The special tokens the tokenizer puts before and after a single text, read off an encoded probe.</summary>
    private static (int[] Prefix, int[] Suffix) SpecialTokens(TransformerTokenizer tokenizer)
    {
        var content = tokenizer.EncodeWithoutSpecialTokens("a").ToArray();
        var full = tokenizer.Encode("a").InputIds;
        for (var start = 0; start + content.Length <= full.Length; start++)
        {
            if (full.AsSpan(start, content.Length).SequenceEqual(content))
            {
                return (full[..start], full[(start + content.Length)..]);
            }
        }

        throw new InvalidOperationException($"The {tokenizer.ModelType} tokenizer encodes \"a\" as [{string.Join(", ", full)}], which does not contain its plain tokens [{string.Join(", ", content)}]; its special tokens cannot be placed around a prompt.");
    }

    /// <summary>A compiled template part: fixed ids (literal), or a text slot with the whitespace that precedes it.</summary>
    private sealed record Piece(int[]? Fixed, TemplatePartKind Slot, string Leading, bool StartsSequence);

    /// <summary>Ids of a compiled demonstration; text segments may be shortened.</summary>
    private sealed record Segment(int[] Ids, bool IsText);
}

/// <summary>
/// Tokenizes the pieces of a prompt one at a time, as they would be tokenized inside the whole prompt.
/// </summary>
internal sealed class PieceTokenizer
{
    private readonly bool _addsPrefixSpace;
    private readonly int[] _newline;

    public PieceTokenizer(TransformerTokenizer tokenizer)
    {
        Tokenizer = tokenizer;
        IsByteLevel = tokenizer.Family is TokenizerFamily.Roberta or TokenizerFamily.Gpt2;
        _addsPrefixSpace = IsByteLevel && tokenizer.EncodeWithoutSpecialTokens("a").SequenceEqual(tokenizer.EncodeWithoutSpecialTokens(" a"));
        _newline = [.. tokenizer.EncodeWithoutSpecialTokens("\n")];
    }

    public TransformerTokenizer Tokenizer { get; }

    /// <summary>Whether the tokenizer is byte-level BPE (GPT-2, RoBERTa), whose words carry their leading space.</summary>
    public bool IsByteLevel { get; }

    public int[] Encode(string piece, bool startsSequence)
    {
        if (_addsPrefixSpace && !startsSequence && piece.Length > 0 && !char.IsWhiteSpace(piece[0]))
        {
            // add_prefix_space would put a space before every piece, not only the prompt's first: a newline in front
            // (a token of its own) keeps the piece as it is inside the prompt, then goes.
            var ids = Tokenizer.EncodeWithoutSpecialTokens("\n" + piece);
            if (ids.Count >= _newline.Length && ids.Take(_newline.Length).SequenceEqual(_newline))
            {
                return [.. ids.Skip(_newline.Length)];
            }
        }

        return [.. Tokenizer.EncodeWithoutSpecialTokens(piece)];
    }
}
