using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace MLNetTransformerExtensions.Tokenization;

/// <summary>When a space is put in front of text before byte-level BPE (<c>add_prefix_space</c>).</summary>
internal enum PrefixSpaceRule
{
    /// <summary>Never.</summary>
    None,

    /// <summary>Always, once per text (GPT2Tokenizer.prepare_for_tokenization).</summary>
    Always,

    /// <summary>Once per text unless it is empty or starts with whitespace (RobertaTokenizer.prepare_for_tokenization).</summary>
    UnlessEmptyOrWhitespace,

    /// <summary>Before every piece between added tokens that does not start with a space (the ByteLevel pre-tokenizer of tokenizer.json).</summary>
    EachPieceUnlessSpace,
}

/// <summary>What a tokenizer.json file defines, translated to Microsoft.ML.Tokenizers and our template.</summary>
internal sealed record TokenizerJsonContents(
    Tokenizer Model,
    Dictionary<string, int> Vocabulary,
    List<AddedToken> AddedTokens,
    SpecialTokensTemplate Template,
    PrefixSpaceRule PrefixSpace,
    string? UnknownToken);

/// <summary>
/// Reads a HuggingFace fast-tokenizer file (<c>tokenizer.json</c>, the serialization of the Rust
/// <c>tokenizers</c> library): a WordPiece model with BertNormalizer/BertPreTokenizer, or a byte-level BPE
/// model with the ByteLevel pre-tokenizer; the post-processor (BertProcessing, RobertaProcessing,
/// TemplateProcessing, ByteLevel) and the added tokens. Anything else is refused with an error naming it.
/// </summary>
internal static class TokenizerJsonReader
{
    /// <summary>The model type (<c>WordPiece</c>, <c>BPE</c>, ...), inferred from its fields when the file predates the <c>type</c> tag.</summary>
    public static string ModelType(JsonElement root, string file)
    {
        if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{file} has no \"model\" object; it is not a HuggingFace tokenizer.json file.");
        }

        if (model.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String)
        {
            return type.GetString()!;
        }

        return model.TryGetProperty("merges", out _) ? "BPE" : model.TryGetProperty("continuing_subword_prefix", out _) ? "WordPiece" : "unknown";
    }

    /// <summary>The post-processor's type, or null.</summary>
    public static string? PostProcessorType(JsonElement root) =>
        root.TryGetProperty("post_processor", out var processor) && processor.ValueKind == JsonValueKind.Object
            ? JsonHelpers.GetString(processor, "type")
            : null;

    public static TokenizerJsonContents Read(JsonElement root, string file)
    {
        var modelType = ModelType(root, file);
        var model = root.GetProperty("model");
        var vocabulary = ReadVocabulary(model, file);
        var contents = modelType switch
        {
            "WordPiece" => ReadWordPiece(root, model, vocabulary, file),
            "BPE" => ReadBytePairEncoding(root, model, vocabulary, file),
            _ => throw new NotSupportedException(
                $"{file} uses a \"{modelType}\" model; only WordPiece (BERT, DistilBERT) and byte-level BPE (RoBERTa, GPT-2) tokenizers are supported."),
        };

        foreach (var added in contents.AddedTokens)
        {
            vocabulary[added.Content] = added.Id;
        }

        return contents;
    }

    private static TokenizerJsonContents ReadWordPiece(JsonElement root, JsonElement model, Dictionary<string, int> vocabulary, string file)
    {
        var unknownToken = JsonHelpers.GetString(model, "unk_token") ?? "[UNK]";
        if (!vocabulary.ContainsKey(unknownToken))
        {
            throw new InvalidDataException($"{file}: the WordPiece unk_token \"{unknownToken}\" is not in the model's vocab.");
        }

        var normalizer = ReadBertNormalizer(root, file);
        var preTokenizerType = SectionType(root, "pre_tokenizer");
        var preTokenizer = preTokenizerType switch
        {
            "BertPreTokenizer" => new BertBasicPreTokenizer(splitOnPunctuation: true),
            "WhitespaceSplit" => new BertBasicPreTokenizer(splitOnPunctuation: false),
            _ => throw new NotSupportedException(
                $"{file}: pre_tokenizer \"{preTokenizerType ?? "null"}\" is not supported with a WordPiece model (supported: BertPreTokenizer, WhitespaceSplit)."),
        };

        // The library reads WordPiece vocabularies as one token per line, the line number being the id.
        var lines = new string[vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1];
        foreach (var (token, id) in vocabulary)
        {
            if (id < 0)
            {
                throw new InvalidDataException($"{file}: token \"{token}\" has the negative id {id}.");
            }

            // A token with a line break can never match: WordPiece only sees whitespace-free words.
            if (token.AsSpan().IndexOfAny('\r', '\n') < 0)
            {
                lines[id] = token;
            }
        }

        var wordPiece = WordPieceTokenizer.Create(
            new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', lines))),
            new WordPieceOptions
            {
                Normalizer = normalizer,
                PreTokenizer = preTokenizer,
                UnknownToken = unknownToken,
                ContinuingSubwordPrefix = JsonHelpers.GetString(model, "continuing_subword_prefix") ?? "##",
                MaxInputCharsPerWord = JsonHelpers.GetInt(model, "max_input_chars_per_word") ?? 100,
            });

        return new TokenizerJsonContents(wordPiece, vocabulary, ReadAddedTokens(root, file), ReadTemplate(root, file), PrefixSpaceRule.None, unknownToken);
    }

    private static BertBasicNormalizer? ReadBertNormalizer(JsonElement root, string file)
    {
        if (!root.TryGetProperty("normalizer", out var normalizer) || normalizer.ValueKind == JsonValueKind.Null)
        {
            return null;
        }

        var type = JsonHelpers.GetString(normalizer, "type");
        if (type != "BertNormalizer")
        {
            throw new NotSupportedException($"{file}: normalizer \"{type}\" is not supported (supported: BertNormalizer, or none).");
        }

        var lowercase = JsonHelpers.GetBool(normalizer, "lowercase") ?? true;
        return new BertBasicNormalizer(
            cleanText: JsonHelpers.GetBool(normalizer, "clean_text") ?? true,
            tokenizeChineseChars: JsonHelpers.GetBool(normalizer, "handle_chinese_chars") ?? true,
            lowerCase: lowercase,
            stripAccents: JsonHelpers.GetBool(normalizer, "strip_accents") ?? lowercase);
    }

    private static TokenizerJsonContents ReadBytePairEncoding(JsonElement root, JsonElement model, Dictionary<string, int> vocabulary, string file)
    {
        foreach (var unsupported in new[] { "continuing_subword_prefix", "end_of_word_suffix" })
        {
            if (!string.IsNullOrEmpty(JsonHelpers.GetString(model, unsupported)))
            {
                throw new NotSupportedException($"{file}: BPE {unsupported} is not supported; only byte-level BPE (RoBERTa, GPT-2) is.");
            }
        }

        if (JsonHelpers.GetBool(model, "byte_fallback") == true || JsonHelpers.GetBool(model, "ignore_merges") == true)
        {
            throw new NotSupportedException($"{file}: BPE byte_fallback and ignore_merges are not supported; only byte-level BPE (RoBERTa, GPT-2) is.");
        }

        if (!root.TryGetProperty("pre_tokenizer", out var preTokenizer) || JsonHelpers.GetString(preTokenizer, "type") != "ByteLevel"
            || JsonHelpers.GetBool(preTokenizer, "use_regex") == false)
        {
            throw new NotSupportedException(
                $"{file}: a BPE model needs the ByteLevel pre-tokenizer with use_regex (GPT-2, RoBERTa); found \"{SectionType(root, "pre_tokenizer") ?? "null"}\".");
        }

        var merges = new List<string>();
        if (model.TryGetProperty("merges", out var mergeArray) && mergeArray.ValueKind == JsonValueKind.Array)
        {
            foreach (var merge in mergeArray.EnumerateArray())
            {
                // Older files store "a b", newer ones ["a", "b"].
                var pair = merge.ValueKind == JsonValueKind.Array
                    ? merge.EnumerateArray().Select(e => e.GetString() ?? "").ToArray()
                    : (merge.GetString() ?? "").Split(' ');
                if (pair.Length != 2)
                {
                    throw new InvalidDataException($"{file}: merge #{merges.Count} ({merge.GetRawText()}) is not a pair of tokens.");
                }

                merges.Add(pair[0] + " " + pair[1]);
            }
        }

        var unknownToken = JsonHelpers.GetString(model, "unk_token");
        var bpe = ByteLevelBpe.Create(vocabulary, merges, unknownToken);
        var prefixSpace = JsonHelpers.GetBool(preTokenizer, "add_prefix_space") == true ? PrefixSpaceRule.EachPieceUnlessSpace : PrefixSpaceRule.None;
        return new TokenizerJsonContents(bpe, vocabulary, ReadAddedTokens(root, file), ReadTemplate(root, file), prefixSpace, unknownToken);
    }

    private static Dictionary<string, int> ReadVocabulary(JsonElement model, string file)
    {
        if (!model.TryGetProperty("vocab", out var vocab) || vocab.ValueKind != JsonValueKind.Object)
        {
            throw new InvalidDataException($"{file}: model.vocab must be an object of token → id.");
        }

        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var entry in vocab.EnumerateObject())
        {
            vocabulary[entry.Name] = entry.Value.GetInt32();
        }

        return vocabulary;
    }

    private static List<AddedToken> ReadAddedTokens(JsonElement root, string file)
    {
        var tokens = new List<AddedToken>();
        if (!root.TryGetProperty("added_tokens", out var added) || added.ValueKind != JsonValueKind.Array)
        {
            return tokens;
        }

        foreach (var token in added.EnumerateArray())
        {
            var content = JsonHelpers.GetString(token, "content")
                ?? throw new InvalidDataException($"{file}: an entry of added_tokens has no content.");
            var id = JsonHelpers.GetInt(token, "id")
                ?? throw new InvalidDataException($"{file}: added token \"{content}\" has no id.");
            tokens.Add(new AddedToken(content, id, JsonHelpers.GetBool(token, "lstrip") ?? false, JsonHelpers.GetBool(token, "rstrip") ?? false));
        }

        return tokens;
    }

    private static SpecialTokensTemplate ReadTemplate(JsonElement root, string file)
    {
        if (!root.TryGetProperty("post_processor", out var processor) || processor.ValueKind == JsonValueKind.Null)
        {
            return SpecialTokensTemplate.None;
        }

        return ReadProcessor(processor, file);
    }

    private static SpecialTokensTemplate ReadProcessor(JsonElement processor, string file)
    {
        var type = JsonHelpers.GetString(processor, "type");
        switch (type)
        {
            case "BertProcessing":
                return SpecialTokensTemplate.Bert(cls: TokenPairId(processor, "cls", file), sep: TokenPairId(processor, "sep", file));
            case "RobertaProcessing":
                return SpecialTokensTemplate.Roberta(cls: TokenPairId(processor, "cls", file), sep: TokenPairId(processor, "sep", file));
            case "ByteLevel":
                return SpecialTokensTemplate.None;
            case "TemplateProcessing":
                return new SpecialTokensTemplate(
                    ReadTemplatePieces(processor, "single", file),
                    ReadTemplatePieces(processor, "pair", file));
            case "Sequence":
                // e.g. [ByteLevel, TemplateProcessing]: the one that adds tokens decides the template.
                var inner = processor.GetProperty("processors").EnumerateArray()
                    .Where(p => JsonHelpers.GetString(p, "type") != "ByteLevel")
                    .ToList();
                return inner.Count switch
                {
                    0 => SpecialTokensTemplate.None,
                    1 => ReadProcessor(inner[0], file),
                    _ => throw new NotSupportedException($"{file}: a post_processor Sequence with several token-adding processors is not supported."),
                };
            default:
                throw new NotSupportedException(
                    $"{file}: post_processor \"{type}\" is not supported (supported: BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel).");
        }
    }

    // BertProcessing / RobertaProcessing store their tokens as ["[CLS]", 101].
    private static int TokenPairId(JsonElement processor, string name, string file)
    {
        if (processor.TryGetProperty(name, out var pair) && pair.ValueKind == JsonValueKind.Array && pair.GetArrayLength() == 2)
        {
            return pair[1].GetInt32();
        }

        throw new InvalidDataException($"{file}: post_processor.{name} must be [token, id].");
    }

    private static TemplatePiece[] ReadTemplatePieces(JsonElement processor, string name, string file)
    {
        var specialTokens = processor.GetProperty("special_tokens");
        var pieces = new List<TemplatePiece>();
        foreach (var piece in processor.GetProperty(name).EnumerateArray())
        {
            if (piece.TryGetProperty("Sequence", out var sequence))
            {
                var typeId = JsonHelpers.GetInt(sequence, "type_id") ?? 0;
                pieces.Add(JsonHelpers.GetString(sequence, "id") == "B" ? TemplatePiece.B(typeId) : TemplatePiece.A(typeId));
            }
            else if (piece.TryGetProperty("SpecialToken", out var special))
            {
                var key = JsonHelpers.GetString(special, "id") ?? "";
                if (!specialTokens.TryGetProperty(key, out var definition) || !definition.TryGetProperty("ids", out var ids))
                {
                    throw new InvalidDataException($"{file}: post_processor {name} template uses \"{key}\", which special_tokens does not define.");
                }

                pieces.Add(TemplatePiece.Ids(JsonHelpers.GetInt(special, "type_id") ?? 0, ids.EnumerateArray().Select(e => e.GetInt32()).ToArray()));
            }
            else
            {
                throw new InvalidDataException($"{file}: post_processor {name} template has an unknown piece {piece.GetRawText()}.");
            }
        }

        return pieces.ToArray();
    }

    private static string? SectionType(JsonElement root, string section) =>
        root.TryGetProperty(section, out var value) && value.ValueKind == JsonValueKind.Object ? JsonHelpers.GetString(value, "type") : null;
}

/// <summary>Byte-level BPE (GPT-2, RoBERTa) from Microsoft.ML.Tokenizers with GPT-2's pre-tokenizer regex.</summary>
internal static class ByteLevelBpe
{
    /// <summary>
    /// Builds the library's <see cref="BpeTokenizer"/> with <c>ByteLevel</c> and <see cref="RobertaPreTokenizer"/>
    /// (GPT-2's <c>'s|'t|...| ?\p{L}+| ?\p{N}+|...</c> split). Added and special tokens are not given to it: we
    /// split them off beforehand, so it only ever sees plain text.
    /// </summary>
    /// <remarks>
    /// Merges naming a token that is not in the vocabulary are skipped (the library refuses them; HuggingFace's
    /// slow tokenizer would merge and then map the result to the unknown token). Skipping keeps the other merges' order.
    /// </remarks>
    public static BpeTokenizer Create(IReadOnlyDictionary<string, int> vocabulary, IEnumerable<string> merges, string? unknownToken)
    {
        var usable = merges.Where(merge =>
        {
            var space = merge.IndexOf(' ');
            var left = merge[..space];
            var right = merge[(space + 1)..];
            return vocabulary.ContainsKey(left) && vocabulary.ContainsKey(right) && vocabulary.ContainsKey(left + right);
        }).ToList();

        return BpeTokenizer.Create(new BpeOptions(vocabulary)
        {
            Merges = usable,
            ByteLevel = true,
            PreTokenizer = RobertaPreTokenizer.Instance,
            UnknownToken = unknownToken is not null && vocabulary.ContainsKey(unknownToken) ? unknownToken : null,
        });
    }
}

/// <summary>Small readers for optional JSON fields.</summary>
internal static class JsonHelpers
{
    public static string? GetString(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String
            ? value.GetString()
            : null;

    public static bool? GetBool(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind is JsonValueKind.True or JsonValueKind.False
            ? value.GetBoolean()
            : null;

    public static int? GetInt(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt32(out var number)
            ? number
            : null;

    public static long? GetLong(JsonElement element, string name) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.Number && value.TryGetInt64(out var number)
            ? number
            : null;
}
