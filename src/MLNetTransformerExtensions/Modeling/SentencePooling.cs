// Mirrors sentence-transformers' models/Pooling.py and models/Normalize.py, and the files a sentence-transformers
// folder describes them with (modules.json, 1_Pooling/config.json, sentence_bert_config.json).
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace MLNetTransformerExtensions.Modeling;

/// <summary>How a sentence embedding is made from a transformer's final hidden states (sentence-transformers' pooling modes).</summary>
public enum EmbeddingPooling
{
    /// <summary>The mean of the final hidden states over the real tokens (attention mask 1, special tokens included): <c>mean_tokens</c>.</summary>
    Mean,

    /// <summary>The final hidden state of the first token (<c>[CLS]</c>): <c>cls_token</c>.</summary>
    Cls,

    /// <summary>The final hidden state of the last real token, the one a decoder has read everything before: <c>lasttoken</c>.</summary>
    LastToken,
}

/// <summary>
/// What a model folder says about its sentence embeddings, each null when it says nothing: sentence-transformers'
/// pooling mode (1_Pooling/config.json, or whichever folder modules.json names for its Pooling module), whether a
/// Normalize module follows, and <c>max_seq_length</c> (sentence_bert_config.json).
/// </summary>
/// <param name="Pooling">The pooling mode, or null.</param>
/// <param name="Normalize">Whether the embeddings are L2-normalised, or null when the folder has no modules.json.</param>
/// <param name="MaxLength">The longest input in tokens, or null.</param>
internal sealed record SentenceEmbeddingSettings(EmbeddingPooling? Pooling, bool? Normalize, int? MaxLength)
{
    /// <summary>Nothing stated.</summary>
    public static SentenceEmbeddingSettings None { get; } = new(null, null, null);

    /// <summary>
    /// Reads a sentence-transformers folder. A folder without these files (a plain HuggingFace model) states nothing.
    /// </summary>
    /// <param name="folder">A model folder.</param>
    /// <returns>The settings found.</returns>
    /// <exception cref="InvalidDataException">A file is not the JSON sentence-transformers writes, or names a pooling mode this library lacks.</exception>
    public static SentenceEmbeddingSettings FromFolder(string folder)
    {
        var modules = ReadJson(Path.Combine(folder, "modules.json"));
        var poolingFolder = "1_Pooling";
        bool? normalize = null;
        if (modules is JsonArray list)
        {
            var types = list.OfType<JsonObject>().Select(m => (Type: m["type"]?.GetValue<string>() ?? string.Empty, Path: m["path"]?.GetValue<string>() ?? string.Empty)).ToList();
            normalize = types.Any(m => m.Type.EndsWith(".Normalize", StringComparison.Ordinal));
            poolingFolder = types.FirstOrDefault(m => m.Type.EndsWith(".Pooling", StringComparison.Ordinal)).Path is { Length: > 0 } path ? path : poolingFolder;
        }
        else if (modules is not null)
        {
            throw new InvalidDataException($"'{Path.Combine(folder, "modules.json")}' is not a JSON array of modules.");
        }

        EmbeddingPooling? pooling = null;
        var poolingPath = Path.Combine(folder, poolingFolder, "config.json");
        if (ReadJson(poolingPath) is JsonObject config)
        {
            pooling = ModeOf(config, poolingPath);
        }

        int? maxLength = null;
        var bertConfigPath = Path.Combine(folder, "sentence_bert_config.json");
        if (ReadJson(bertConfigPath) is JsonObject bertConfig && bertConfig["max_seq_length"] is JsonValue value)
        {
            maxLength = value.TryGetValue<int>(out var length) && length >= 2 ? length
                : throw new InvalidDataException($"'{bertConfigPath}': max_seq_length must be an integer of at least 2, not {value.ToJsonString()}.");
        }

        return new SentenceEmbeddingSettings(pooling, normalize, maxLength);
    }

    /// <summary>Writes the three files sentence-transformers reads, so that it loads a folder this library saved.</summary>
    /// <param name="folder">A HuggingFace model folder (config.json and weights at its root).</param>
    /// <param name="pooling">The pooling mode.</param>
    /// <param name="normalize">Whether a Normalize module follows the pooling.</param>
    /// <param name="maxLength">The longest input in tokens.</param>
    /// <param name="hiddenSize">The embedding's dimension.</param>
    public static void Write(string folder, EmbeddingPooling pooling, bool normalize, int maxLength, int hiddenSize)
    {
        var modules = new JsonArray
        {
            new JsonObject { ["idx"] = 0, ["name"] = "0", ["path"] = string.Empty, ["type"] = "sentence_transformers.models.Transformer" },
            new JsonObject { ["idx"] = 1, ["name"] = "1", ["path"] = "1_Pooling", ["type"] = "sentence_transformers.models.Pooling" },
        };
        if (normalize)
        {
            modules.Add(new JsonObject { ["idx"] = 2, ["name"] = "2", ["path"] = "2_Normalize", ["type"] = "sentence_transformers.models.Normalize" });
            Directory.CreateDirectory(Path.Combine(folder, "2_Normalize"));
        }

        var options = new JsonSerializerOptions { WriteIndented = true };
        File.WriteAllText(Path.Combine(folder, "modules.json"), modules.ToJsonString(options));
        Directory.CreateDirectory(Path.Combine(folder, "1_Pooling"));
        File.WriteAllText(Path.Combine(folder, "1_Pooling", "config.json"), new JsonObject
        {
            ["word_embedding_dimension"] = hiddenSize,
            ["pooling_mode_cls_token"] = pooling == EmbeddingPooling.Cls,
            ["pooling_mode_mean_tokens"] = pooling == EmbeddingPooling.Mean,
            ["pooling_mode_max_tokens"] = false,
            ["pooling_mode_mean_sqrt_len_tokens"] = false,
            ["pooling_mode_lasttoken"] = pooling == EmbeddingPooling.LastToken,
        }.ToJsonString(options));
        File.WriteAllText(Path.Combine(folder, "sentence_bert_config.json"),
            new JsonObject { ["max_seq_length"] = maxLength, ["do_lower_case"] = false }.ToJsonString(options));
    }

    /// <summary>
    /// The one mode set in a Pooling config. sentence-transformers can concatenate several; this library makes one
    /// vector of the hidden size, so a config that asks for more (or for max / sqrt-length pooling) is refused.
    /// </summary>
    private static EmbeddingPooling ModeOf(JsonObject config, string path)
    {
        if (config["pooling_mode"]?.GetValue<string>() is { } named)
        {
            return named switch
            {
                "mean" => EmbeddingPooling.Mean,
                "cls" => EmbeddingPooling.Cls,
                "lasttoken" => EmbeddingPooling.LastToken,
                _ => throw new InvalidDataException($"'{path}': pooling_mode '{named}' is not supported; this library pools with mean, cls or lasttoken."),
            };
        }

        var set = new List<(string Key, EmbeddingPooling? Mode)>
        {
            ("pooling_mode_mean_tokens", EmbeddingPooling.Mean),
            ("pooling_mode_cls_token", EmbeddingPooling.Cls),
            ("pooling_mode_lasttoken", EmbeddingPooling.LastToken),
            ("pooling_mode_max_tokens", null),
            ("pooling_mode_mean_sqrt_len_tokens", null),
            ("pooling_mode_weightedmean_tokens", null),
        }.Where(m => config[m.Key] is JsonValue v && v.TryGetValue<bool>(out var on) && on).ToList();
        if (set.Count != 1 || set[0].Mode is not { } mode)
        {
            throw new InvalidDataException(
                $"'{path}' sets {(set.Count == 0 ? "no pooling mode" : string.Join(" and ", set.Select(m => m.Key)))}; this library pools with exactly one of " +
                "pooling_mode_mean_tokens, pooling_mode_cls_token or pooling_mode_lasttoken. Choose the pooling explicitly to override it.");
        }

        return mode;
    }

    private static JsonNode? ReadJson(string path)
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonNode.Parse(File.ReadAllText(path));
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"'{path}' is not valid JSON: {e.Message}", e);
        }
    }
}

/// <summary>Pooling and normalisation of final hidden states into one vector per row, as sentence-transformers' Pooling and Normalize.</summary>
internal static class SentencePooling
{
    /// <summary>Pools (B, T, H) hidden states of a right- or left-padded batch into (B, H).</summary>
    /// <param name="hidden">Final hidden states (B, T, H).</param>
    /// <param name="attentionMask">1 for real tokens, 0 for padding (B, T), int64.</param>
    /// <param name="pooling">The pooling mode.</param>
    /// <param name="normalize">Whether to L2-normalise each vector (ε = 1e-12, as torch's <c>normalize</c>).</param>
    /// <returns>(B, H), in the hidden states' dtype.</returns>
    public static Tensor Pool(Tensor hidden, Tensor attentionMask, EmbeddingPooling pooling, bool normalize)
    {
        var pooled = pooling switch
        {
            EmbeddingPooling.Cls => Layers.FirstToken(hidden, attentionMask),
            EmbeddingPooling.LastToken => LastToken(hidden, attentionMask),
            _ => MeanOverTokens(hidden, attentionMask),
        };
        return normalize ? nn.functional.normalize(pooled, p: 2, dim: 1, eps: 1e-12) : pooled;
    }

    /// <summary>sum(h · mask) / max(sum(mask), 1e-9) over the sequence.</summary>
    private static Tensor MeanOverTokens(Tensor hidden, Tensor attentionMask)
    {
        var mask = attentionMask.unsqueeze(-1).to(hidden.dtype);          // (B, T) -> (B, T, 1)
        var sum = (hidden * mask).sum(1);                                 // (B, H)
        return sum / mask.sum(1).clamp_min(1e-9);                         // (B, H) / (B, 1)
    }

    /// <summary>hidden[b, last real token of b]: the last column whose mask is 1, for either padding side.</summary>
    private static Tensor LastToken(Tensor hidden, Tensor attentionMask)
    {
        var length = attentionMask.shape[1];
        // (B, T): column index where the mask is 1, -1 elsewhere; the maximum is the last real column.
        var columns = arange(length, dtype: ScalarType.Int64, device: hidden.device).unsqueeze(0).expand_as(attentionMask);
        var last = columns.where(attentionMask.ne(0), full_like(columns, -1)).amax(1).clamp_min(0);
        return hidden[arange(hidden.shape[0], dtype: ScalarType.Int64, device: hidden.device), last];
    }
}
