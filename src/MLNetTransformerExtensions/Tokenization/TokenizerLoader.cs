using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;

namespace MLNetTransformerExtensions.Tokenization;

/// <summary>Everything <see cref="TransformerTokenizer"/> is built from, resolved from the folder's files.</summary>
internal sealed record TokenizerSetup(
    TokenizerFamily Family,
    string ModelType,
    Tokenizer Model,
    IReadOnlyDictionary<string, int> Vocabulary,
    IReadOnlyList<AddedToken> AddedTokens,
    SpecialTokensTemplate Template,
    PrefixSpaceRule PrefixSpace,
    IReadOnlyDictionary<string, string> SpecialTokens,
    int PadTokenId,
    int ModelMaxLength,
    IReadOnlyDictionary<string, byte[]> Files);

/// <summary>A special token named in tokenizer_config.json or special_tokens_map.json, with its strip flags.</summary>
internal sealed record SpecialTokenSpec(string Content, bool LeftStrip, bool RightStrip);

/// <summary>
/// Reads a HuggingFace tokenizer folder the way <c>AutoTokenizer.from_pretrained(dir, use_fast=False)</c> of
/// transformers 4.31 does: <c>config.json</c> for the model type, <c>tokenizer_config.json</c> then
/// <c>special_tokens_map.json</c> (which wins) for special tokens and options, <c>added_tokens.json</c> or
/// <c>added_tokens_decoder</c> for added tokens, and the vocabulary from <c>vocab.txt</c> (WordPiece) or
/// <c>vocab.json</c> + <c>merges.txt</c> (byte-level BPE), falling back to <c>tokenizer.json</c>.
/// </summary>
internal static class TokenizerLoader
{
    public const string ConfigFile = "config.json";
    public const string TokenizerConfigFile = "tokenizer_config.json";
    public const string SpecialTokensMapFile = "special_tokens_map.json";
    public const string AddedTokensFile = "added_tokens.json";
    public const string WordPieceVocabFile = "vocab.txt";
    public const string BpeVocabFile = "vocab.json";
    public const string MergesFile = "merges.txt";
    public const string TokenizerJsonFile = "tokenizer.json";
    public const string SentencePieceFile = "spiece.model";

    /// <summary>The files a tokenizer is made of (config.json belongs to the model and is only read).</summary>
    public static readonly string[] TokenizerFileNames =
        [TokenizerConfigFile, SpecialTokensMapFile, AddedTokensFile, WordPieceVocabFile, BpeVocabFile, MergesFile, TokenizerJsonFile, SentencePieceFile];

    // transformers' SPECIAL_TOKENS_ATTRIBUTES order, which is also the order new ids are given in.
    private static readonly string[] Roles = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"];

    public static TransformerTokenizer Load(IReadOnlyDictionary<string, byte[]> files, string source)
    {
        using var config = Parse(files, ConfigFile, source);
        using var tokenizerConfig = Parse(files, TokenizerConfigFile, source);
        using var specialTokensMap = Parse(files, SpecialTokensMapFile, source);
        using var tokenizerJson = Parse(files, TokenizerJsonFile, source);
        using var addedTokensJson = Parse(files, AddedTokensFile, source);
        var configRoot = config?.RootElement ?? default;
        var options = tokenizerConfig?.RootElement ?? default;

        var (family, modelType) = ResolveFamily(configRoot, options, tokenizerJson?.RootElement, source);
        var hasSlowFiles = family switch
        {
            TokenizerFamily.Bert => files.ContainsKey(WordPieceVocabFile),
            TokenizerFamily.T5 => files.ContainsKey(SentencePieceFile),
            _ => files.ContainsKey(BpeVocabFile) && files.ContainsKey(MergesFile),
        };
        if (family == TokenizerFamily.T5 && !hasSlowFiles)
        {
            throw new FileNotFoundException(
                $"No tokenizer vocabulary in '{source}': a t5 tokenizer needs spiece.model (a tokenizer.json alone is not read for T5). " +
                $"Files found: {(files.Count == 0 ? "none" : string.Join(", ", files.Keys.Order(StringComparer.Ordinal)))}.");
        }

        if (!hasSlowFiles && tokenizerJson is null)
        {
            var expected = family == TokenizerFamily.Bert ? "vocab.txt" : "vocab.json and merges.txt";
            throw new FileNotFoundException(
                $"No tokenizer vocabulary in '{source}': a {modelType} tokenizer needs {expected}, or a tokenizer.json. " +
                $"Files found: {(files.Count == 0 ? "none" : string.Join(", ", files.Keys.Order(StringComparer.Ordinal)))}.");
        }

        var roles = DefaultSpecialTokens(family);
        var additional = new List<SpecialTokenSpec>();
        ApplySpecialTokens(options, family, roles, additional);
        ApplySpecialTokens(specialTokensMap?.RootElement ?? default, family, roles, additional);
        var declaredSpecials = Roles.Select(r => roles[r]).OfType<SpecialTokenSpec>().Concat(additional).ToList();
        var splitTokens = new Dictionary<string, AddedToken>(StringComparer.Ordinal);

        Tokenizer model;
        Dictionary<string, int> vocabulary;
        SpecialTokensTemplate? template = null;
        PrefixSpaceRule prefixSpace;
        if (hasSlowFiles)
        {
            (model, vocabulary) = family switch
            {
                TokenizerFamily.Bert => ReadWordPiece(files[WordPieceVocabFile], options, roles["unk_token"]?.Content, source),
                TokenizerFamily.T5 => ReadSentencePiece(files[SentencePieceFile], options, source),
                _ => ReadBytePairEncoding(files[BpeVocabFile], files[MergesFile], roles["unk_token"]?.Content, source),
            };

            // added_tokens.json (transformers <= 4.33) holds plain added tokens, which those versions strip on both sides.
            if (addedTokensJson is not null)
            {
                foreach (var entry in addedTokensJson.RootElement.EnumerateObject())
                {
                    splitTokens[entry.Name] = new AddedToken(entry.Name, entry.Value.GetInt32(), true, true);
                    vocabulary[entry.Name] = entry.Value.GetInt32();
                }
            }

            var decoder = ReadAddedTokensDecoder(options, source);
            foreach (var token in decoder)
            {
                vocabulary[token.Content] = token.Id;
            }

            // Like from_pretrained, a special token missing from the vocabulary is added with the next free id.
            var nextId = vocabulary.Count == 0 ? 0 : vocabulary.Values.Max() + 1;
            foreach (var special in declaredSpecials)
            {
                if (!vocabulary.ContainsKey(special.Content))
                {
                    vocabulary[special.Content] = nextId++;
                }

                splitTokens[special.Content] = new AddedToken(special.Content, vocabulary[special.Content], special.LeftStrip, special.RightStrip);
            }

            foreach (var token in decoder)
            {
                splitTokens[token.Content] = token;
            }

            var addPrefixSpace = JsonHelpers.GetBool(options, "add_prefix_space") ?? false;
            prefixSpace = !addPrefixSpace ? PrefixSpaceRule.None
                : family == TokenizerFamily.Roberta ? PrefixSpaceRule.UnlessEmptyOrWhitespace
                : family == TokenizerFamily.Gpt2 ? PrefixSpaceRule.Always
                : PrefixSpaceRule.None;
        }
        else
        {
            var contents = TokenizerJsonReader.Read(tokenizerJson!.RootElement, $"{TokenizerJsonFile} in '{source}'");
            (model, vocabulary, template, prefixSpace) = (contents.Model, contents.Vocabulary, contents.Template, contents.PrefixSpace);
            if (contents.UnknownToken is not null && roles["unk_token"] is null)
            {
                roles["unk_token"] = new SpecialTokenSpec(contents.UnknownToken, false, false);
            }

            foreach (var token in contents.AddedTokens)
            {
                splitTokens[token.Content] = token;
            }

            // A fast tokenizer file defines its own ids: named special tokens it does not know are dropped, not invented.
            foreach (var role in Roles)
            {
                if (roles[role] is { } spec && !vocabulary.ContainsKey(spec.Content))
                {
                    roles[role] = null;
                }
            }

            foreach (var special in declaredSpecials.Where(s => vocabulary.ContainsKey(s.Content)))
            {
                splitTokens.TryAdd(special.Content, new AddedToken(special.Content, vocabulary[special.Content], special.LeftStrip, special.RightStrip));
            }
        }

        var specialTokens = Roles.Where(r => roles[r] is not null).ToDictionary(r => r, r => roles[r]!.Content);
        template ??= SlowTemplate(family, specialTokens, vocabulary, options, source);

        var padTokenId = specialTokens.TryGetValue("pad_token", out var pad) ? vocabulary[pad]
            : JsonHelpers.GetInt(configRoot, "pad_token_id")
            ?? (specialTokens.TryGetValue("eos_token", out var eos) ? vocabulary[eos]
            : throw new InvalidDataException(
                $"The tokenizer in '{source}' has no pad token, config.json has no pad_token_id and there is no eos token to pad with: " +
                "set pad_token in special_tokens_map.json."));

        return new TransformerTokenizer(new TokenizerSetup(
            family,
            modelType,
            model,
            vocabulary,
            splitTokens.Values.ToList(),
            template,
            prefixSpace,
            specialTokens,
            padTokenId,
            ModelMaxLength(modelType, configRoot, options),
            files));
    }

    private static JsonDocument? Parse(IReadOnlyDictionary<string, byte[]> files, string name, string source)
    {
        if (!files.TryGetValue(name, out var bytes))
        {
            return null;
        }

        try
        {
            return JsonDocument.Parse(bytes, new JsonDocumentOptions { AllowTrailingCommas = true, CommentHandling = JsonCommentHandling.Skip });
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{name} in '{source}' is not valid JSON: {e.Message}", e);
        }
    }

    private static (TokenizerFamily Family, string ModelType) ResolveFamily(JsonElement config, JsonElement options, JsonElement? tokenizerJson, string source)
    {
        if (JsonHelpers.GetString(config, "model_type") is { } modelType)
        {
            return modelType switch
            {
                "bert" or "distilbert" => (TokenizerFamily.Bert, modelType),
                "roberta" or "bart" => (TokenizerFamily.Roberta, modelType),
                "gpt2" => (TokenizerFamily.Gpt2, modelType),
                "t5" => (TokenizerFamily.T5, modelType),
                _ => throw new NotSupportedException(
                    $"config.json in '{source}' has model_type \"{modelType}\"; supported model types are bert, distilbert, roberta, gpt2, bart and t5."),
            };
        }

        if (JsonHelpers.GetString(options, "tokenizer_class") is { } tokenizerClass)
        {
            var slowClass = tokenizerClass.EndsWith("Fast", StringComparison.Ordinal) ? tokenizerClass[..^4] : tokenizerClass;
            return slowClass switch
            {
                "BertTokenizer" => (TokenizerFamily.Bert, "bert"),
                "DistilBertTokenizer" => (TokenizerFamily.Bert, "distilbert"),
                "RobertaTokenizer" => (TokenizerFamily.Roberta, "roberta"),
                "GPT2Tokenizer" => (TokenizerFamily.Gpt2, "gpt2"),
                "BartTokenizer" => (TokenizerFamily.Roberta, "bart"),
                "T5Tokenizer" => (TokenizerFamily.T5, "t5"),
                _ => throw new NotSupportedException(
                    $"tokenizer_config.json in '{source}' names tokenizer_class \"{tokenizerClass}\"; supported are BertTokenizer, DistilBertTokenizer, RobertaTokenizer, GPT2Tokenizer, BartTokenizer and T5Tokenizer."),
            };
        }

        if (tokenizerJson is { } root)
        {
            var file = $"{TokenizerJsonFile} in '{source}'";
            return TokenizerJsonReader.ModelType(root, file) switch
            {
                "WordPiece" => (TokenizerFamily.Bert, "bert"),
                "BPE" when TokenizerJsonReader.PostProcessorType(root) == "RobertaProcessing" => (TokenizerFamily.Roberta, "roberta"),
                "BPE" => (TokenizerFamily.Gpt2, "gpt2"),
                var other => throw new NotSupportedException(
                    $"{file} uses a \"{other}\" model; only WordPiece (BERT, DistilBERT) and byte-level BPE (RoBERTa, GPT-2) tokenizers are supported."),
            };
        }

        throw new FileNotFoundException(
            $"Cannot tell which tokenizer '{source}' holds: it needs config.json (model_type), tokenizer_config.json (tokenizer_class) or tokenizer.json.");
    }

    // The defaults of BertTokenizer, RobertaTokenizer and GPT2Tokenizer.__init__.
    private static Dictionary<string, SpecialTokenSpec?> DefaultSpecialTokens(TokenizerFamily family)
    {
        var roles = Roles.ToDictionary(r => r, _ => (SpecialTokenSpec?)null);
        void Set(string role, string content) => roles[role] = new SpecialTokenSpec(content, LeftStripByDefault(family, role), RightStripByDefault(family));
        switch (family)
        {
            case TokenizerFamily.Bert:
                Set("unk_token", "[UNK]");
                Set("sep_token", "[SEP]");
                Set("pad_token", "[PAD]");
                Set("cls_token", "[CLS]");
                Set("mask_token", "[MASK]");
                break;
            case TokenizerFamily.Roberta:
                Set("bos_token", "<s>");
                Set("eos_token", "</s>");
                Set("unk_token", "<unk>");
                Set("sep_token", "</s>");
                Set("pad_token", "<pad>");
                Set("cls_token", "<s>");
                Set("mask_token", "<mask>");
                break;
            case TokenizerFamily.T5:
                Set("eos_token", "</s>");
                Set("unk_token", "<unk>");
                Set("pad_token", "<pad>");
                break;
            case TokenizerFamily.Gpt2:
                Set("bos_token", "<|endoftext|>");
                Set("eos_token", "<|endoftext|>");
                Set("unk_token", "<|endoftext|>");
                break;
        }

        return roles;
    }

    // transformers 4.31 strips the whitespace around special tokens given as plain strings (BERT's, T5's); RoBERTa and
    // GPT-2 wrap theirs in AddedToken(lstrip=False, rstrip=False), except RoBERTa's mask, which has lstrip=True.
    private static bool LeftStripByDefault(TokenizerFamily family, string role) =>
        family is TokenizerFamily.Bert or TokenizerFamily.T5 || (family == TokenizerFamily.Roberta && role == "mask_token");

    private static bool RightStripByDefault(TokenizerFamily family) => family is TokenizerFamily.Bert or TokenizerFamily.T5;

    private static void ApplySpecialTokens(JsonElement source, TokenizerFamily family, Dictionary<string, SpecialTokenSpec?> roles, List<SpecialTokenSpec> additional)
    {
        if (source.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        foreach (var role in Roles)
        {
            if (source.TryGetProperty(role, out var value))
            {
                roles[role] = ReadSpecialToken(value, family, role);
            }
        }

        if (source.TryGetProperty("additional_special_tokens", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            additional.Clear();
            additional.AddRange(list.EnumerateArray().Select(v => ReadSpecialToken(v, family, "additional_special_tokens")).OfType<SpecialTokenSpec>());
        }
    }

    // A special token is null, a plain string, or an AddedToken object {"content": ..., "lstrip": ..., "rstrip": ...}.
    private static SpecialTokenSpec? ReadSpecialToken(JsonElement value, TokenizerFamily family, string role) => value.ValueKind switch
    {
        JsonValueKind.String => new SpecialTokenSpec(value.GetString()!, LeftStripByDefault(family, role), RightStripByDefault(family)),
        JsonValueKind.Object when JsonHelpers.GetString(value, "content") is { } content =>
            new SpecialTokenSpec(content, JsonHelpers.GetBool(value, "lstrip") ?? false, JsonHelpers.GetBool(value, "rstrip") ?? false),
        _ => null,
    };

    // transformers >= 4.34 writes {"added_tokens_decoder": {"103": {"content": "[MASK]", "lstrip": false, ...}}}.
    private static List<AddedToken> ReadAddedTokensDecoder(JsonElement options, string source)
    {
        var tokens = new List<AddedToken>();
        if (options.ValueKind != JsonValueKind.Object || !options.TryGetProperty("added_tokens_decoder", out var decoder) || decoder.ValueKind != JsonValueKind.Object)
        {
            return tokens;
        }

        foreach (var entry in decoder.EnumerateObject())
        {
            if (!int.TryParse(entry.Name, out var id) || JsonHelpers.GetString(entry.Value, "content") is not { } content)
            {
                throw new InvalidDataException($"tokenizer_config.json in '{source}': added_tokens_decoder entry \"{entry.Name}\" needs an integer key and a content.");
            }

            tokens.Add(new AddedToken(content, id, JsonHelpers.GetBool(entry.Value, "lstrip") ?? false, JsonHelpers.GetBool(entry.Value, "rstrip") ?? false));
        }

        return tokens;
    }

    private static (Tokenizer Model, Dictionary<string, int> Vocabulary) ReadWordPiece(byte[] vocabFile, JsonElement options, string? unknownToken, string source)
    {
        // Like BertTokenizer's load_vocab: one token per line (any line ending), id = line number, a repeated token keeps its last line.
        // Only \r\n, \r and \n end lines there (Python's universal newlines), not U+0085 or U+2028.
        var text = Encoding.UTF8.GetString(vocabFile).TrimStart('\uFEFF');
        var lines = text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n').Split('\n');
        var count = lines.Length > 0 && lines[^1].Length == 0 ? lines.Length - 1 : lines.Length;
        var vocabulary = new Dictionary<string, int>(count, StringComparer.Ordinal);
        for (var id = 0; id < count; id++)
        {
            if (vocabulary.TryGetValue(lines[id], out var earlier))
            {
                lines[earlier] = ""; // the library skips empty lines but still counts them, so ids stay aligned
            }

            vocabulary[lines[id]] = id;
        }

        vocabulary.Remove("");
        if (unknownToken is null || !vocabulary.ContainsKey(unknownToken))
        {
            throw new InvalidDataException(unknownToken is null
                ? $"The tokenizer in '{source}' has no unk_token, which WordPiece needs: set it in special_tokens_map.json."
                : $"vocab.txt in '{source}' does not contain the unknown token \"{unknownToken}\" that WordPiece needs.");
        }

        var doLowerCase = JsonHelpers.GetBool(options, "do_lower_case") ?? true;
        var doBasicTokenize = JsonHelpers.GetBool(options, "do_basic_tokenize") ?? true;

        // Without basic tokenization transformers still lower-cases the text, then only splits on whitespace.
        var normalizer = doBasicTokenize
            ? new BertBasicNormalizer(
                cleanText: true,
                tokenizeChineseChars: JsonHelpers.GetBool(options, "tokenize_chinese_chars") ?? true,
                lowerCase: doLowerCase,
                stripAccents: JsonHelpers.GetBool(options, "strip_accents") ?? doLowerCase)
            : new BertBasicNormalizer(cleanText: false, tokenizeChineseChars: false, lowerCase: doLowerCase, stripAccents: false);
        var splitOnPunctuation = doBasicTokenize && (JsonHelpers.GetBool(options, "do_split_on_punc") ?? true);

        var model = WordPieceTokenizer.Create(
            new MemoryStream(Encoding.UTF8.GetBytes(string.Join('\n', lines, 0, count))),
            new WordPieceOptions
            {
                Normalizer = normalizer,
                PreTokenizer = new BertBasicPreTokenizer(splitOnPunctuation),
                UnknownToken = unknownToken,
                ContinuingSubwordPrefix = "##",
                MaxInputCharsPerWord = 100,
            });
        return (model, vocabulary);
    }

    /// <summary>
    /// T5Tokenizer's vocabulary: the SentencePiece pieces by id, then <c>extra_ids</c> sentinels counted down from the
    /// end (<c>&lt;extra_id_0&gt;</c> is the last id, as in T5Tokenizer's <c>vocab_size - 1 - N</c>).
    /// </summary>
    private static (Tokenizer Model, Dictionary<string, int> Vocabulary) ReadSentencePiece(byte[] modelFile, JsonElement options, string source)
    {
        var file = SentencePieceModelFile.Read(modelFile, $"{SentencePieceFile} in '{source}'");
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        for (var id = 0; id < file.Pieces.Count; id++)
        {
            vocabulary.TryAdd(file.Pieces[id].Piece, id);
        }

        var extraIds = JsonHelpers.GetInt(options, "extra_ids") ?? 100;
        for (var n = 0; n < extraIds; n++)
        {
            vocabulary[$"<extra_id_{n}>"] = file.Pieces.Count + extraIds - 1 - n;
        }

        return (file.CreateTokenizer($"{SentencePieceFile} in '{source}'"), vocabulary);
    }

    private static (Tokenizer Model, Dictionary<string, int> Vocabulary) ReadBytePairEncoding(byte[] vocabFile, byte[] mergesFile, string? unknownToken, string source)
    {
        var vocabulary = new Dictionary<string, int>(StringComparer.Ordinal);
        try
        {
            using var vocab = JsonDocument.Parse(vocabFile);
            foreach (var entry in vocab.RootElement.EnumerateObject())
            {
                vocabulary[entry.Name] = entry.Value.GetInt32();
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException)
        {
            throw new InvalidDataException($"vocab.json in '{source}' must be a JSON object of token → integer id: {e.Message}", e);
        }

        // Like GPT2Tokenizer: split("\n")[1:-1] drops the "#version" header and the empty text after the last newline;
        // each line is split on whitespace.
        var lines = Encoding.UTF8.GetString(mergesFile).Split('\n');
        var merges = new List<string>(Math.Max(0, lines.Length - 2));
        for (var i = 1; i < lines.Length - 1; i++)
        {
            var parts = lines[i].Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length == 2)
            {
                merges.Add(parts[0] + " " + parts[1]);
            }
        }

        return (ByteLevelBpe.Create(vocabulary, merges, unknownToken), vocabulary);
    }

    private static SpecialTokensTemplate SlowTemplate(
        TokenizerFamily family, IReadOnlyDictionary<string, string> specials, IReadOnlyDictionary<string, int> vocabulary, JsonElement options, string source)
    {
        int Require(string role) => specials.TryGetValue(role, out var content)
            ? vocabulary[content]
            : throw new InvalidDataException($"The {family} tokenizer in '{source}' has no {role}, which its input template needs.");

        return family switch
        {
            TokenizerFamily.Bert => SpecialTokensTemplate.Bert(Require("cls_token"), Require("sep_token")),
            TokenizerFamily.Roberta => SpecialTokensTemplate.Roberta(Require("cls_token"), Require("sep_token")),
            TokenizerFamily.T5 => SpecialTokensTemplate.EosSuffixed(Require("eos_token")),
            _ => JsonHelpers.GetBool(options, "add_bos_token") == true ? SpecialTokensTemplate.BosPrefixed(Require("bos_token")) : SpecialTokensTemplate.None,
        };
    }

    /// <summary>
    /// The longest input the model takes: tokenizer_config.json's <c>model_max_length</c> when it is a real limit
    /// (transformers writes 1e30 for "unknown"), capped by the position table in config.json
    /// (RoBERTa's positions start after its padding index, so it has <c>max_position_embeddings - pad_token_id - 1</c>).
    /// </summary>
    private static int ModelMaxLength(string modelType, JsonElement config, JsonElement options)
    {
        // BART's table has two extra rows, so max_position_embeddings positions fit; RoBERTa's lose pad_token_id + 1.
        var positions = JsonHelpers.GetInt(config, "max_position_embeddings") ?? JsonHelpers.GetInt(config, "n_positions");
        if (modelType == "roberta" && positions is not null)
        {
            positions -= (JsonHelpers.GetInt(config, "pad_token_id") ?? 1) + 1;
        }

        int? declared = JsonHelpers.GetLong(options, "model_max_length") is { } length && length is > 0 and <= 1_000_000 ? (int)length : null;
        return (declared, positions) switch
        {
            ({ } d, { } p) => Math.Min(d, p),
            ({ } d, null) => d,
            (null, { } p) => p,
            _ => int.MaxValue,
        };
    }
}
