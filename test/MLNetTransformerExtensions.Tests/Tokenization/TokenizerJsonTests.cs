using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using MLNetTransformerExtensions.Tokenization;
using static MLNetTransformerExtensions.Tests.Tokenization.TokenizerFixtures;

namespace MLNetTransformerExtensions.Tests.Tokenization;

/// <summary>
/// Folders holding only config.json and a fast-tokenizer tokenizer.json, written here in HuggingFace's schema from
/// the fixtures' vocabularies, must give the slow tokenizers' ids.
/// </summary>
[TestClass]
public sealed class TokenizerJsonTests
{
    [TestMethod]
    [DataRow("hf-tiny", "bert")]
    [DataRow("hf-tiny", "distilbert")]
    [DataRow("hf-tiny", "roberta")]
    [DataRow("hf-tiny", "gpt2")]
    [DataRow("hf-tiny-lm", "bert")]
    [DataRow("hf-tiny-lm", "distilbert")]
    [DataRow("hf-tiny-lm", "roberta")]
    [DataRow("hf-tiny-lm", "gpt2")]
    public void TokenizerJsonOnlyFolderGivesTheFixtureIds(string set, string model)
    {
        var folder = TempFolder();
        File.Copy(Path.Combine(Folder(set, model), "config.json"), Path.Combine(folder, "config.json"));
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), BuildTokenizerJson(Folder(set, model), model).ToJsonString());

        var fromJson = TransformerTokenizer.FromFolder(folder);
        var slow = TransformerTokenizer.FromFolder(Folder(set, model));
        TransformerTokenizerFixtureTests.AssertCasesMatch(fromJson, Expected(set, model));
        Assert.AreEqual(slow.Family, fromJson.Family);
        Assert.AreEqual(slow.PadTokenId, fromJson.PadTokenId);
        Assert.AreEqual(slow.MaskTokenId, fromJson.MaskTokenId);
        Assert.AreEqual(slow.VocabularySize, fromJson.VocabularySize);
    }

    [TestMethod]
    public void TokenizerJsonAloneWithoutConfigStillTellsTheFamily()
    {
        foreach (var (model, family) in new[] { ("bert", TokenizerFamily.Bert), ("roberta", TokenizerFamily.Roberta), ("gpt2", TokenizerFamily.Gpt2) })
        {
            var folder = TempFolder();
            File.WriteAllText(Path.Combine(folder, "tokenizer.json"), BuildTokenizerJson(Folder("hf-tiny", model), model).ToJsonString());
            var tokenizer = TransformerTokenizer.FromFolder(folder);
            Assert.AreEqual(family, tokenizer.Family, model);
            Assert.AreEqual(int.MaxValue, tokenizer.ModelMaxLength, "no file states a limit");
            var first = Cases(Expected("hf-tiny", model)).First();
            CollectionAssert.AreEqual(first.InputIds, tokenizer.Encode(first.Text).InputIds, model);
        }
    }

    [TestMethod]
    public void UnsupportedModelTypeIsNamedWithTheFile()
    {
        var folder = TempFolder();
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), """{"model": {"type": "Unigram", "vocab": [["<unk>", 0.0]]}}""");
        var error = Assert.ThrowsExactly<NotSupportedException>(() => TransformerTokenizer.FromFolder(folder));
        StringAssert.Contains(error.Message, "Unigram");
        StringAssert.Contains(error.Message, "tokenizer.json");
        StringAssert.Contains(error.Message, folder);
    }

    [TestMethod]
    public void UnsupportedNormalizerIsNamed()
    {
        var folder = TempFolder();
        File.Copy(Path.Combine(Folder("hf-tiny", "bert"), "config.json"), Path.Combine(folder, "config.json"));
        var json = BuildTokenizerJson(Folder("hf-tiny", "bert"), "bert");
        json["normalizer"] = new JsonObject { ["type"] = "Sequence", ["normalizers"] = new JsonArray() };
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), json.ToJsonString());
        var error = Assert.ThrowsExactly<NotSupportedException>(() => TransformerTokenizer.FromFolder(folder));
        StringAssert.Contains(error.Message, "normalizer \"Sequence\"");
    }

    /// <summary>Writes a tokenizer.json as the tokenizers library serializes BERT, RoBERTa and GPT-2 fast tokenizers.</summary>
    internal static JsonObject BuildTokenizerJson(string fixture, string model)
    {
        using var options = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(fixture, "tokenizer_config.json")));
        return model is "bert" or "distilbert" ? WordPieceJson(fixture, model, options.RootElement) : BytePairJson(fixture, model);
    }

    private static JsonObject WordPieceJson(string fixture, string model, JsonElement options)
    {
        var lines = File.ReadAllText(Path.Combine(fixture, "vocab.txt")).Split('\n');
        var vocab = new JsonObject();
        for (var id = 0; id < lines.Length; id++)
        {
            if (lines[id].Length > 0)
            {
                vocab[lines[id]] = id;
            }
        }

        int Id(string token) => vocab[token]!.GetValue<int>();
        var added = new JsonArray();
        foreach (var token in new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" })
        {
            added.Add(AddedToken(Id(token), token, lstrip: false));
        }

        // The fast BERT converter writes TemplateProcessing; older files have BertProcessing: cover both.
        JsonObject postProcessor = model == "bert"
            ? new JsonObject
            {
                ["type"] = "TemplateProcessing",
                ["single"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0)),
                ["pair"] = new JsonArray(Special("[CLS]", 0), Sequence("A", 0), Special("[SEP]", 0), Sequence("B", 1), Special("[SEP]", 1)),
                ["special_tokens"] = new JsonObject
                {
                    ["[CLS]"] = new JsonObject { ["id"] = "[CLS]", ["ids"] = new JsonArray(Id("[CLS]")), ["tokens"] = new JsonArray("[CLS]") },
                    ["[SEP]"] = new JsonObject { ["id"] = "[SEP]", ["ids"] = new JsonArray(Id("[SEP]")), ["tokens"] = new JsonArray("[SEP]") },
                },
            }
            : new JsonObject { ["type"] = "BertProcessing", ["sep"] = new JsonArray("[SEP]", Id("[SEP]")), ["cls"] = new JsonArray("[CLS]", Id("[CLS]")) };

        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = new JsonObject
            {
                ["type"] = "BertNormalizer",
                ["clean_text"] = true,
                ["handle_chinese_chars"] = true,
                ["strip_accents"] = null,
                ["lowercase"] = options.GetProperty("do_lower_case").GetBoolean(),
            },
            ["pre_tokenizer"] = new JsonObject { ["type"] = "BertPreTokenizer" },
            ["post_processor"] = postProcessor,
            ["decoder"] = new JsonObject { ["type"] = "WordPiece", ["prefix"] = "##", ["cleanup"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "WordPiece",
                ["unk_token"] = "[UNK]",
                ["continuing_subword_prefix"] = "##",
                ["max_input_chars_per_word"] = 100,
                ["vocab"] = vocab,
            },
        };
    }

    private static JsonObject BytePairJson(string fixture, string model)
    {
        var vocab = JsonNode.Parse(File.ReadAllText(Path.Combine(fixture, "vocab.json")))!.AsObject();
        int Id(string token) => vocab[token]!.GetValue<int>();
        var mergeLines = File.ReadAllText(Path.Combine(fixture, "merges.txt"), Encoding.UTF8).Split('\n')[1..^1];

        // RoBERTa's file here keeps the older "a b" merges, GPT-2's the newer ["a", "b"] pairs.
        var merges = new JsonArray();
        foreach (var line in mergeLines)
        {
            var parts = line.Split(' ');
            merges.Add(model == "roberta" ? JsonValue.Create(line) : new JsonArray(parts[0], parts[1]));
        }

        var added = new JsonArray();
        JsonNode postProcessor;
        if (model == "roberta")
        {
            foreach (var token in new[] { "<s>", "<pad>", "</s>", "<unk>", "<mask>" })
            {
                added.Add(AddedToken(Id(token), token, lstrip: token == "<mask>"));
            }

            postProcessor = new JsonObject
            {
                ["type"] = "RobertaProcessing",
                ["sep"] = new JsonArray("</s>", Id("</s>")),
                ["cls"] = new JsonArray("<s>", Id("<s>")),
                ["trim_offsets"] = true,
                ["add_prefix_space"] = false,
            };
        }
        else
        {
            added.Add(AddedToken(Id("<|endoftext|>"), "<|endoftext|>", lstrip: false));
            postProcessor = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true };
        }

        return new JsonObject
        {
            ["version"] = "1.0",
            ["truncation"] = null,
            ["padding"] = null,
            ["added_tokens"] = added,
            ["normalizer"] = null,
            ["pre_tokenizer"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = false, ["trim_offsets"] = true, ["use_regex"] = true },
            ["post_processor"] = postProcessor,
            ["decoder"] = new JsonObject { ["type"] = "ByteLevel", ["add_prefix_space"] = true, ["trim_offsets"] = true, ["use_regex"] = true },
            ["model"] = new JsonObject
            {
                ["type"] = "BPE",
                ["dropout"] = null,
                ["unk_token"] = null,
                ["continuing_subword_prefix"] = "",
                ["end_of_word_suffix"] = "",
                ["fuse_unk"] = false,
                ["byte_fallback"] = false,
                ["vocab"] = vocab.DeepClone(),
                ["merges"] = merges,
            },
        };
    }

    private static JsonObject AddedToken(int id, string content, bool lstrip) => new()
    {
        ["id"] = id,
        ["content"] = content,
        ["single_word"] = false,
        ["lstrip"] = lstrip,
        ["rstrip"] = false,
        ["normalized"] = false,
        ["special"] = true,
    };

    private static JsonObject Special(string id, int typeId) => new() { ["SpecialToken"] = new JsonObject { ["id"] = id, ["type_id"] = typeId } };

    private static JsonObject Sequence(string id, int typeId) => new() { ["Sequence"] = new JsonObject { ["id"] = id, ["type_id"] = typeId } };
}
