namespace MLNetTransformerExtensions.Training;

/// <summary>
/// Label words (a verbalizer): the word a language model should predict for each class, e.g. <c>" positive"</c> and
/// <c>" negative"</c> after <c>Review: ... Sentiment:</c>.
/// </summary>
/// <remarks>
/// With byte-level BPE (GPT-2, RoBERTa) words carry their leading space (<c>" positive"</c> is the single token
/// <c>Ġpositive</c> where <c>"positive"</c> may split); a label word given without one gets it, since the word follows a
/// space in the prompt. WordPiece (BERT, DistilBERT) ignores the space.
/// </remarks>
public static class Verbalizer
{
    /// <summary>
    /// Reads label words written as <c>label=word,label=word</c> (e.g. <c>positive= positive,negative= negative</c>)
    /// into one word per class, in class order. Labels are trimmed; a word keeps its leading space and loses trailing ones.
    /// </summary>
    /// <param name="specification">The label words.</param>
    /// <param name="labels">The class names, in class-index order.</param>
    /// <returns>The word of each class, in class-index order.</returns>
    /// <exception cref="ArgumentException">An entry has no <c>=</c>, names an unknown class or one twice, or a class has no word.</exception>
    public static IReadOnlyList<string> Parse(string specification, IReadOnlyList<string> labels)
    {
        ArgumentNullException.ThrowIfNull(specification);
        ArgumentNullException.ThrowIfNull(labels);
        var words = new string?[labels.Count];
        foreach (var entry in specification.Split(',').Where(e => !string.IsNullOrWhiteSpace(e)))
        {
            var equals = entry.IndexOf('=', StringComparison.Ordinal);
            if (equals < 0)
            {
                throw new ArgumentException($"The label words \"{specification}\" have the entry \"{entry}\" without '='; write label=word, e.g. \"positive= positive,negative= negative\".", nameof(specification));
            }

            var label = entry[..equals].Trim();
            var index = IndexOf(labels, label);
            if (index < 0)
            {
                throw new ArgumentException($"The label words \"{specification}\" name the class '{label}', which is not one of the classes: {string.Join(", ", labels.Select(l => $"'{l}'"))}.", nameof(specification));
            }

            if (words[index] is not null)
            {
                throw new ArgumentException($"The label words \"{specification}\" give the class '{label}' a word twice.", nameof(specification));
            }

            words[index] = entry[(equals + 1)..].TrimEnd();
        }

        var missing = labels.Where((_, i) => words[i] is null).ToList();
        if (missing.Count > 0)
        {
            throw new ArgumentException($"The label words \"{specification}\" give no word for the class{(missing.Count > 1 ? "es" : "")} {string.Join(", ", missing.Select(l => $"'{l}'"))}; every class needs one.", nameof(specification));
        }

        return [.. words.Select(w => w!)];
    }

    /// <summary>
    /// Default label words: for two sentiment-like classes (<c>False</c>/<c>True</c>, <c>0</c>/<c>1</c>,
    /// <c>negative</c>/<c>positive</c>, <c>neg</c>/<c>pos</c>) the words <c>negative</c>/<c>positive</c> for a decoder and
    /// <c>terrible</c>/<c>great</c> for an encoder (PET's <c>It was great.</c>); otherwise each class's own name.
    /// </summary>
    /// <param name="labels">The class names, in class-index order.</param>
    /// <param name="kind">Decoder or encoder.</param>
    /// <returns>One word per class.</returns>
    public static IReadOnlyList<string> Defaults(IReadOnlyList<string> labels, ClassifierKind kind)
    {
        ArgumentNullException.ThrowIfNull(labels);
        var polarity = labels.Select(Polarity).ToArray();
        if (labels.Count == 2 && polarity.Contains(-1) && polarity.Contains(1))
        {
            return [.. polarity.Select(p => (p, kind) switch
            {
                (1, ClassifierKind.Decoder or ClassifierKind.EncoderDecoder) => "positive",
                (_, ClassifierKind.Decoder or ClassifierKind.EncoderDecoder) => "negative",
                (1, _) => "great",
                _ => "terrible",
            })];
        }

        return [.. labels];
    }

    /// <summary>
    /// The label words as the model sees them (byte-level BPE words with their leading space) and their token ids;
    /// checks that each is spelled by the vocabulary, differs from the others, and is one token for an encoder.
    /// </summary>
    internal static (string[] Words, int[][] Tokens) Tokenize(PieceTokenizer pieces, IReadOnlyList<string> labels, IReadOnlyList<string> labelWords, ClassifierKind kind)
    {
        var tokenizer = pieces.Tokenizer;
        if (labelWords.Count != labels.Count)
        {
            throw new ArgumentException($"There are {labelWords.Count} label words for {labels.Count} classes ({string.Join(", ", labels.Select(l => $"'{l}'"))}); give one word per class, in class order.", nameof(labelWords));
        }

        var words = new string[labels.Count];
        var tokens = new int[labels.Count][];
        string Describe(int[] ids) => string.Join(" ", tokenizer.ConvertIdsToTokens(ids));
        for (var k = 0; k < labels.Count; k++)
        {
            var word = labelWords[k] ?? string.Empty;
            words[k] = !pieces.IsByteLevel ? word.Trim()
                : word.Length > 0 && !char.IsWhiteSpace(word[0]) ? " " + word.TrimEnd()
                : word.TrimEnd();
            // An encoder-decoder's target is a text of its own, with the tokenizer's special tokens (HuggingFace's
            // tokenizer(text_target=...): "<s> Ġpositive </s>" for BART, "▁positive </s>" for T5).
            tokens[k] = kind == ClassifierKind.EncoderDecoder ? tokenizer.Encode(words[k]).InputIds : pieces.Encode(words[k], startsSequence: false);
            var specials = kind == ClassifierKind.EncoderDecoder ? tokenizer.SpecialTokenCount(pair: false) : 0;
            if (string.IsNullOrWhiteSpace(words[k]) || tokens[k].Length <= specials)
            {
                throw new ArgumentException($"The label word \"{word}\" of class '{labels[k]}' tokenizes to nothing with the {tokenizer.ModelType} tokenizer; give each class a word.", nameof(labelWords));
            }

            if (tokenizer.UnkTokenId is int unk && tokens[k].Contains(unk))
            {
                throw new ArgumentException($"The label word \"{word}\" of class '{labels[k]}' is not in the {tokenizer.ModelType} vocabulary (it tokenizes to {Describe(tokens[k])}); choose a word the vocabulary has.", nameof(labelWords));
            }

            if (kind == ClassifierKind.Encoder && tokens[k].Length != 1)
            {
                throw new ArgumentException(
                    $"The label word \"{word}\" of class '{labels[k]}' is {tokens[k].Length} tokens ({Describe(tokens[k])}) for the {tokenizer.ModelType} tokenizer, but the masked-LM head fills one mask, so an encoder's label words must be single tokens; choose a word the vocabulary has whole.",
                    nameof(labelWords));
            }

            for (var j = 0; j < k; j++)
            {
                if (tokens[j].AsSpan().SequenceEqual(tokens[k]))
                {
                    throw new ArgumentException($"The classes '{labels[j]}' and '{labels[k]}' have the same label word (\"{labelWords[j]}\" and \"{word}\" are both {Describe(tokens[k])}); each class needs its own word.", nameof(labelWords));
                }
            }
        }

        return (words, tokens);
    }

    private static int Polarity(string label) => label.Trim().ToLowerInvariant() switch
    {
        "false" or "0" or "negative" or "neg" => -1,
        "true" or "1" or "positive" or "pos" => 1,
        _ => 0,
    };

    private static int IndexOf(IReadOnlyList<string> labels, string label)
    {
        for (var i = 0; i < labels.Count; i++)
        {
            if (labels[i] == label)
            {
                return i;
            }
        }

        return -1;
    }
}
