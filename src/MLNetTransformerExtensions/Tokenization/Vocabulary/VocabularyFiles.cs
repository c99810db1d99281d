using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace MLNetTransformerExtensions.Tokenization.Vocabulary;

/// <summary>
/// Writes a trained vocabulary as the files transformers' <c>save_pretrained</c> writes for <c>BertTokenizer</c>
/// and <c>GPT2Tokenizer</c>, and publishes them all at once: they are written into a hidden sibling folder first
/// and moved into place only when complete.
/// </summary>
internal static class VocabularyFiles
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>vocab.txt (one token per line, the id is the line number), tokenizer_config.json, special_tokens_map.json.</summary>
    public static Dictionary<string, byte[]> WordPiece(IReadOnlyList<string> tokens, bool lowerCase, int modelMaxLength)
    {
        var vocab = new StringBuilder();
        foreach (var token in tokens)
        {
            vocab.Append(token).Append('\n');
        }

        var specials = new JsonObject
        {
            ["cls_token"] = "[CLS]",
            ["mask_token"] = "[MASK]",
            ["pad_token"] = "[PAD]",
            ["sep_token"] = "[SEP]",
            ["unk_token"] = "[UNK]",
        };
        var config = new JsonObject
        {
            ["clean_up_tokenization_spaces"] = true,
            ["cls_token"] = "[CLS]",
            ["do_basic_tokenize"] = true,
            ["do_lower_case"] = lowerCase,
            ["mask_token"] = "[MASK]",
            ["model_max_length"] = modelMaxLength,
            ["never_split"] = null,
            ["pad_token"] = "[PAD]",
            ["sep_token"] = "[SEP]",
            ["strip_accents"] = null,
            ["tokenize_chinese_chars"] = true,
            ["tokenizer_class"] = "BertTokenizer",
            ["unk_token"] = "[UNK]",
        };
        return new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            [TokenizerLoader.WordPieceVocabFile] = Utf8.GetBytes(vocab.ToString()),
            [TokenizerLoader.TokenizerConfigFile] = Json(config),
            [TokenizerLoader.SpecialTokensMapFile] = Json(specials),
        };
    }

    /// <summary>
    /// vocab.json (token → id, in id order), merges.txt (<c>#version: 0.2</c>, then one <c>left right</c> pair per line
    /// in merge order), tokenizer_config.json and special_tokens_map.json with <c>&lt;|endoftext|&gt;</c> as bos, eos and unk.
    /// </summary>
    public static Dictionary<string, byte[]> ByteLevelBpe(IReadOnlyList<string> tokens, IEnumerable<(string Left, string Right)> merges, int modelMaxLength)
    {
        var vocab = new StringBuilder("{\n");
        for (var id = 0; id < tokens.Count; id++)
        {
            vocab.Append("  ");
            AppendJsonString(vocab, tokens[id]);
            vocab.Append(": ").Append(id).Append(id + 1 < tokens.Count ? ",\n" : "\n");
        }

        vocab.Append("}\n");

        var mergeLines = new StringBuilder("#version: 0.2\n");
        foreach (var (left, right) in merges)
        {
            mergeLines.Append(left).Append(' ').Append(right).Append('\n');
        }

        var specials = new JsonObject
        {
            ["bos_token"] = VocabularyTrainer.EndOfText,
            ["eos_token"] = VocabularyTrainer.EndOfText,
            ["unk_token"] = VocabularyTrainer.EndOfText,
        };
        var config = new JsonObject
        {
            ["add_bos_token"] = false,
            ["add_prefix_space"] = false,
            ["bos_token"] = VocabularyTrainer.EndOfText,
            ["clean_up_tokenization_spaces"] = true,
            ["eos_token"] = VocabularyTrainer.EndOfText,
            ["errors"] = "replace",
            ["model_max_length"] = modelMaxLength,
            ["tokenizer_class"] = "GPT2Tokenizer",
            ["unk_token"] = VocabularyTrainer.EndOfText,
        };
        return new Dictionary<string, byte[]>(StringComparer.Ordinal)
        {
            [TokenizerLoader.BpeVocabFile] = Utf8.GetBytes(vocab.ToString()),
            [TokenizerLoader.MergesFile] = Utf8.GetBytes(mergeLines.ToString()),
            [TokenizerLoader.TokenizerConfigFile] = Json(config),
            [TokenizerLoader.SpecialTokensMapFile] = Json(specials),
        };
    }

    /// <summary>
    /// Puts the files into <paramref name="folder"/> so that a failure never leaves a partial vocabulary there: all are
    /// written into a hidden sibling folder, which becomes the folder (a missing folder), or whose files replace
    /// the old ones by rename (an existing folder, e.g. a model folder). Tokenizer files of another kind left
    /// in an existing folder (vocab.txt next to a new vocab.json, or a tokenizer.json that HuggingFace would read
    /// in preference) are deleted, so the folder holds one consistent tokenizer.
    /// </summary>
    public static void Publish(string folder, IReadOnlyDictionary<string, byte[]> files)
    {
        var full = Path.GetFullPath(folder).TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar);
        if (File.Exists(full))
        {
            throw new IOException($"The output '{folder}' is a file; give a folder (it is created if missing).");
        }

        var parent = Path.GetDirectoryName(full) ?? throw new IOException($"The output '{folder}' has no parent folder; give a folder below the root.");
        Directory.CreateDirectory(parent);
        var staging = Path.Combine(parent, $".{Path.GetFileName(full)}.partial-{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging);
        try
        {
            foreach (var (name, bytes) in files)
            {
                File.WriteAllBytes(Path.Combine(staging, name), bytes);
            }

            if (!Directory.Exists(full))
            {
                Directory.Move(staging, full);
                return;
            }

            foreach (var name in files.Keys)
            {
                File.Move(Path.Combine(staging, name), Path.Combine(full, name), overwrite: true);
            }

            foreach (var stale in TokenizerLoader.TokenizerFileNames.Where(n => !files.ContainsKey(n)))
            {
                File.Delete(Path.Combine(full, stale));
            }
        }
        finally
        {
            if (Directory.Exists(staging))
            {
                Directory.Delete(staging, recursive: true);
            }
        }
    }

    private static byte[] Json(JsonObject value) => Utf8.GetBytes(value.ToJsonString(Indented) + "\n");

    // JSON string with only what JSON requires escaped (quote, backslash, controls), like Python's ensure_ascii=False.
    private static void AppendJsonString(StringBuilder builder, string value)
    {
        builder.Append('"');
        foreach (var c in value)
        {
            switch (c)
            {
                case '"':
                    builder.Append("\\\"");
                    break;
                case '\\':
                    builder.Append("\\\\");
                    break;
                case < ' ':
                    builder.Append("\\u").Append(((int)c).ToString("x4", System.Globalization.CultureInfo.InvariantCulture));
                    break;
                default:
                    builder.Append(c);
                    break;
            }
        }

        builder.Append('"');
    }
}
