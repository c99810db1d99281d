using System.Text.Json;
using MLNetTransformerExtensions.Tokenization;
using static MLNetTransformerExtensions.Tests.Tokenization.TokenizerFixtures;

namespace MLNetTransformerExtensions.Tests.Tokenization;

/// <summary>Saving, reloading, variants of the folder files, and the errors for folders we cannot read.</summary>
[TestClass]
public sealed class TransformerTokenizerFolderTests
{
    [TestMethod]
    [DataRow("hf-tiny", "bert")]
    [DataRow("hf-tiny", "distilbert")]
    [DataRow("hf-tiny", "roberta")]
    [DataRow("hf-tiny", "gpt2")]
    [DataRow("hf-tiny-lm", "roberta")]
    public void SaveToWritesAFolderThatLoadsToTheSameIds(string set, string model)
    {
        var source = Folder(set, model);
        var original = TransformerTokenizer.FromFolder(source);
        var saved = TempFolder();
        original.SaveTo(saved);

        foreach (var name in new[] { "vocab.txt", "vocab.json", "merges.txt", "special_tokens_map.json" })
        {
            if (File.Exists(Path.Combine(source, name)))
            {
                CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(source, name)), File.ReadAllBytes(Path.Combine(saved, name)), name);
            }
        }

        Assert.IsFalse(File.Exists(Path.Combine(saved, "config.json")), "config.json belongs to the model");

        // Without config.json the saved tokenizer_config.json must still say which tokenizer and how long.
        var reloaded = TransformerTokenizer.FromFolder(saved);
        Assert.AreEqual(original.Family, reloaded.Family);
        Assert.AreEqual(original.ModelType, reloaded.ModelType);
        Assert.AreEqual(original.ModelMaxLength, reloaded.ModelMaxLength);
        Assert.AreEqual(original.PadTokenId, reloaded.PadTokenId);
        Assert.AreEqual(original.MaskTokenId, reloaded.MaskTokenId);
        TransformerTokenizerFixtureTests.AssertCasesMatch(reloaded, Expected(set, model));

        // Saving over the folder it was loaded from is safe (the files are held in memory).
        reloaded.SaveTo(saved);
        TransformerTokenizerFixtureTests.AssertCasesMatch(TransformerTokenizer.FromFolder(saved), Expected(set, model));
    }

    [TestMethod]
    public void SaveToFillsInAMissingTokenizerConfig()
    {
        var folder = TempFolder();
        foreach (var name in new[] { "config.json", "vocab.json", "merges.txt" })
        {
            File.Copy(Path.Combine(Folder("hf-tiny", "gpt2"), name), Path.Combine(folder, name));
        }

        var tokenizer = TransformerTokenizer.FromFolder(folder);
        Assert.AreEqual(128, tokenizer.ModelMaxLength);
        Assert.AreEqual(tokenizer.EosTokenId, tokenizer.PadTokenId, "GPT2Tokenizer's defaults: <|endoftext|> everywhere, pad = eos");

        var saved = TempFolder();
        tokenizer.SaveTo(saved);
        using var written = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(saved, "tokenizer_config.json")));
        Assert.AreEqual("GPT2Tokenizer", written.RootElement.GetProperty("tokenizer_class").GetString());
        Assert.AreEqual(128, written.RootElement.GetProperty("model_max_length").GetInt32());
        TransformerTokenizerFixtureTests.AssertCasesMatch(TransformerTokenizer.FromFolder(saved), Expected("hf-tiny", "gpt2"));
    }

    [TestMethod]
    public void CrlfVocabularyGivesTheSameIds()
    {
        var folder = CopyOfFixture("hf-tiny", "bert");
        var vocab = Path.Combine(folder, "vocab.txt");
        File.WriteAllText(vocab, File.ReadAllText(vocab).Replace("\n", "\r\n"));
        TransformerTokenizerFixtureTests.AssertCasesMatch(TransformerTokenizer.FromFolder(folder), Expected("hf-tiny", "bert"));
    }

    [TestMethod]
    public void RepeatedVocabularyLineKeepsItsLastIdLikeHuggingFace()
    {
        var folder = CopyOfFixture("hf-tiny", "bert");
        var original = TransformerTokenizer.FromFolder(folder);
        var vocab = Path.Combine(folder, "vocab.txt");
        File.AppendAllText(vocab, "hello\n");
        var tokenizer = TransformerTokenizer.FromFolder(folder);
        var lastLine = original.VocabularySize;
        Assert.AreEqual(lastLine, tokenizer.TokenToId("hello"));
        Assert.AreEqual(lastLine, tokenizer.Encode("Hello").InputIds[1]);
    }

    [TestMethod]
    public void LowerCaseAndAccentOptionsComeFromTokenizerConfig()
    {
        var uncased = TransformerTokenizer.FromFolder(Folder("hf-tiny", "bert"));
        var folder = CopyOfFixture("hf-tiny", "bert");
        EditJson(Path.Combine(folder, "tokenizer_config.json"), "do_lower_case", "false");
        var cased = TransformerTokenizer.FromFolder(folder);

        CollectionAssert.AreEqual(uncased.Encode("hello world").InputIds, cased.Encode("hello world").InputIds);
        CollectionAssert.AreNotEqual(uncased.Encode("Hello World").InputIds, cased.Encode("Hello World").InputIds);
        Assert.AreEqual(uncased.UnkTokenId, cased.Encode("café").InputIds[1], "a cased tokenizer keeps accents: café is not in this vocabulary");

        EditJson(Path.Combine(folder, "tokenizer_config.json"), "strip_accents", "true");
        var stripped = TransformerTokenizer.FromFolder(folder);
        CollectionAssert.AreEqual(uncased.Encode("café").InputIds, stripped.Encode("café").InputIds);
    }

    [TestMethod]
    public void AddPrefixSpaceAndAddBosTokenComeFromTokenizerConfig()
    {
        var roberta = TransformerTokenizer.FromFolder(Folder("hf-tiny", "roberta"));
        var folder = CopyOfFixture("hf-tiny", "roberta");
        EditJson(Path.Combine(folder, "tokenizer_config.json"), "add_prefix_space", "true");
        var prefixed = TransformerTokenizer.FromFolder(folder);
        CollectionAssert.AreEqual(roberta.Encode(" Hello world").InputIds, prefixed.Encode("Hello world").InputIds);
        CollectionAssert.AreEqual(roberta.Encode(" Hello world").InputIds, prefixed.Encode(" Hello world").InputIds, "no second space");

        var gpt2 = TransformerTokenizer.FromFolder(Folder("hf-tiny", "gpt2"));
        folder = CopyOfFixture("hf-tiny", "gpt2");
        EditJson(Path.Combine(folder, "tokenizer_config.json"), "add_bos_token", "true");
        var withBos = TransformerTokenizer.FromFolder(folder);
        var plain = gpt2.Encode("Hello world").InputIds;
        CollectionAssert.AreEqual(new[] { gpt2.BosTokenId!.Value }.Concat(plain).ToArray(), withBos.Encode("Hello world").InputIds);
        Assert.AreEqual(1, withBos.SpecialTokenCount(pair: false));
    }

    [TestMethod]
    public void MissingFolderIsReported()
    {
        var missing = Path.Combine(TempFolder(), "nothing-here");
        var error = Assert.ThrowsExactly<DirectoryNotFoundException>(() => TransformerTokenizer.FromFolder(missing));
        StringAssert.Contains(error.Message, missing);
    }

    [TestMethod]
    public void MissingVocabularyNamesTheFolderAndTheExpectedFiles()
    {
        var folder = TempFolder();
        File.Copy(Path.Combine(Folder("hf-tiny", "bert"), "config.json"), Path.Combine(folder, "config.json"));
        var error = Assert.ThrowsExactly<FileNotFoundException>(() => TransformerTokenizer.FromFolder(folder));
        StringAssert.Contains(error.Message, folder);
        StringAssert.Contains(error.Message, "vocab.txt");
        StringAssert.Contains(error.Message, "tokenizer.json");

        folder = TempFolder();
        File.Copy(Path.Combine(Folder("hf-tiny", "roberta"), "config.json"), Path.Combine(folder, "config.json"));
        File.Copy(Path.Combine(Folder("hf-tiny", "roberta"), "vocab.json"), Path.Combine(folder, "vocab.json"));
        error = Assert.ThrowsExactly<FileNotFoundException>(() => TransformerTokenizer.FromFolder(folder));
        StringAssert.Contains(error.Message, "vocab.json and merges.txt");
    }

    [TestMethod]
    public void EmptyFolderSaysWhatIsNeeded()
    {
        var error = Assert.ThrowsExactly<FileNotFoundException>(() => TransformerTokenizer.FromFolder(TempFolder()));
        StringAssert.Contains(error.Message, "config.json");
    }

    [TestMethod]
    public void UnknownModelTypeIsNamed()
    {
        var folder = CopyOfFixture("hf-tiny", "bert");
        EditJson(Path.Combine(folder, "config.json"), "model_type", "\"electra\"");
        var error = Assert.ThrowsExactly<NotSupportedException>(() => TransformerTokenizer.FromFolder(folder));
        StringAssert.Contains(error.Message, "\"electra\"");
        StringAssert.Contains(error.Message, "bert, distilbert, roberta, gpt2, bart and t5");
    }

    [TestMethod]
    public void MalformedJsonNamesTheFile()
    {
        var folder = CopyOfFixture("hf-tiny", "bert");
        File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), "{ \"do_lower_case\": ");
        var error = Assert.ThrowsExactly<InvalidDataException>(() => TransformerTokenizer.FromFolder(folder));
        StringAssert.Contains(error.Message, "tokenizer_config.json");
        StringAssert.Contains(error.Message, folder);
    }

    private static string CopyOfFixture(string set, string model)
    {
        var folder = TempFolder();
        foreach (var file in Directory.GetFiles(Folder(set, model)).Where(f => !f.EndsWith(".safetensors", StringComparison.Ordinal)))
        {
            File.Copy(file, Path.Combine(folder, Path.GetFileName(file)));
        }

        return folder;
    }

    private static void EditJson(string path, string key, string jsonValue)
    {
        var node = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(path))!.AsObject();
        node[key] = System.Text.Json.Nodes.JsonNode.Parse(jsonValue);
        File.WriteAllText(path, node.ToJsonString());
    }
}
