using System.Text;
using System.Text.Json;
using Microsoft.ML.Tokenizers;
using MLNetTransformerExtensions.Tokenization;
using MLNetTransformerExtensions.Tokenization.Vocabulary;

namespace MLNetTransformerExtensions.Tests.Tokenization.Vocabulary;

/// <summary>
/// Trained vocabularies load in our tokenizer and in Microsoft.ML.Tokenizers' own classes, encode the corpus's
/// language without unknown tokens and decode back; sizes, determinism, and the errors.
/// </summary>
[TestClass]
public sealed class VocabularyTrainerTests
{
    // Sentences in the corpus's language (not copied from it), with what BERT's basic tokenizer makes of them.
    private static readonly (string Text, string Normalised)[] Sentences =
    [
        ("The tokenizer counts the words of the text, and then the trainer writes the vocabulary file.",
            "the tokenizer counts the words of the text , and then the trainer writes the vocabulary file ."),
        ("In 2017 the CAFÉ was naïve about long sentences; \"why?\" asked the reader.",
            "in 2017 the cafe was naive about long sentences ; \" why ? \" asked the reader ."),
        ("Every model learns frequent pairs (see the notes)!",
            "every model learns frequent pairs ( see the notes ) !"),
        ("Then\tthe reader tested chapter 39 again.",
            "then the reader tested chapter 39 again ."),
    ];

    private static VocabularyTrainingOptions WordPiece(int size) => new() { Kind = VocabularyKind.WordPiece, VocabularySize = size };

    private static VocabularyTrainingOptions Bpe(int size) => new() { Kind = VocabularyKind.ByteLevelBpe, VocabularySize = size };

    [TestMethod]
    public void WordPieceVocabularyLoadsAndRoundTripsNormalisedText()
    {
        using var corpus = new TrainingCorpus();
        var output = corpus.Output("wordpiece");
        var summary = VocabularyTrainer.Train(corpus.Files, output, WordPiece(200));

        Assert.AreEqual(200, summary.VocabularySize);
        CollectionAssert.AreEqual(new[] { "special_tokens_map.json", "tokenizer_config.json", "vocab.txt" }, summary.Files.ToArray());
        var lines = File.ReadAllLines(Path.Combine(output, "vocab.txt"));
        Assert.HasCount(200, lines);
        CollectionAssert.AreEqual(new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }, lines[..5]);
        Assert.HasCount(200, lines.Distinct(StringComparer.Ordinal));

        var tokenizer = TransformerTokenizer.FromFolder(output);
        Assert.AreEqual(TokenizerFamily.Bert, tokenizer.Family);
        Assert.AreEqual(200, tokenizer.VocabularySize);
        Assert.AreEqual((0, 1, 2, 3, 4), (tokenizer.PadTokenId, tokenizer.UnkTokenId, tokenizer.ClsTokenId, tokenizer.SepTokenId, tokenizer.MaskTokenId));
        Assert.AreEqual(512, tokenizer.ModelMaxLength);

        foreach (var (text, normalised) in Sentences)
        {
            var ids = tokenizer.EncodeWithoutSpecialTokens(text);
            Assert.DoesNotContain(1, ids, $"no [UNK] in '{text}'");
            Assert.AreEqual(normalised, JoinWordPieces(tokenizer.ConvertIdsToTokens(ids)), text);
            CollectionAssert.AreEqual(ids.Prepend(2).Append(3).ToArray(), tokenizer.Encode(text).InputIds);
        }
    }

    [TestMethod]
    public void WordPieceVocabularyLoadsInMicrosoftMLTokenizersBertTokenizer()
    {
        using var corpus = new TrainingCorpus();
        var output = corpus.Output("wordpiece");
        VocabularyTrainer.Train(corpus.Files, output, WordPiece(300));
        var ours = TransformerTokenizer.FromFolder(output);
        var theirs = BertTokenizer.Create(Path.Combine(output, "vocab.txt"), new BertOptions { LowerCaseBeforeTokenization = true, RemoveNonSpacingMarks = true });

        // The library's own BERT pre-processing deletes tabs (gluing the words around them), unlike HuggingFace's; skip the tab sentence.
        foreach (var (text, normalised) in Sentences.Where(s => !s.Text.Contains('\t', StringComparison.Ordinal)))
        {
            var ids = theirs.EncodeToIds(text, addSpecialTokens: false);
            CollectionAssert.AreEqual(ours.EncodeWithoutSpecialTokens(text).ToArray(), ids.ToArray(), text);
            Assert.AreEqual(normalised.Replace(" ", "", StringComparison.Ordinal), theirs.Decode(ids)!.Replace(" ", "", StringComparison.Ordinal), text);
        }
    }

    [TestMethod]
    public void CasedWordPieceKeepsCaseAndAccents()
    {
        using var corpus = new TrainingCorpus();
        var output = corpus.Output("cased");
        VocabularyTrainer.Train(corpus.Files, output, WordPiece(300) with { LowerCase = false });
        using var config = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(output, "tokenizer_config.json")));
        Assert.IsFalse(config.RootElement.GetProperty("do_lower_case").GetBoolean());

        var tokenizer = TransformerTokenizer.FromFolder(output);
        Assert.IsNotNull(tokenizer.TokenToId("The"));
        Assert.IsNotNull(tokenizer.TokenToId("é"));
        Assert.AreEqual("The café", JoinWordPieces(tokenizer.ConvertIdsToTokens(tokenizer.EncodeWithoutSpecialTokens("The café"))));
    }

    [TestMethod]
    public void ByteLevelBpeVocabularyLoadsAndRoundTripsExactly()
    {
        using var corpus = new TrainingCorpus();
        var output = corpus.Output("bpe");
        var summary = VocabularyTrainer.Train(corpus.Files, output, Bpe(400));

        Assert.AreEqual(400, summary.VocabularySize);
        Assert.AreEqual(256, summary.AlphabetSize);
        using var vocab = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(output, "vocab.json")));
        var entries = vocab.RootElement.EnumerateObject().ToDictionary(e => e.Name, e => e.Value.GetInt32());
        Assert.HasCount(400, entries);
        CollectionAssert.AreEquivalent(Enumerable.Range(0, 400).ToArray(), entries.Values.ToArray());
        Assert.AreEqual(399, entries["<|endoftext|>"]);
        Assert.AreEqual((0, 93, 187, 188, 255), (entries["!"], entries["~"], entries["ÿ"], entries["Ā"], entries["Ń"]), "GPT-2's byte order");
        var merges = File.ReadAllLines(Path.Combine(output, "merges.txt"));
        Assert.AreEqual("#version: 0.2", merges[0]);
        Assert.AreEqual(summary.MergeCount, merges.Length - 1);
        Assert.IsGreaterThanOrEqualTo(400 - 257, summary.MergeCount);

        var tokenizer = TransformerTokenizer.FromFolder(output);
        Assert.AreEqual(TokenizerFamily.Gpt2, tokenizer.Family);
        Assert.AreEqual(400, tokenizer.VocabularySize);
        Assert.AreEqual((399, 399, 399), (tokenizer.EosTokenId, tokenizer.BosTokenId, tokenizer.PadTokenId));
        Assert.AreEqual(1024, tokenizer.ModelMaxLength);

        var theirs = BpeTokenizer.Create(new BpeOptions(Path.Combine(output, "vocab.json"), Path.Combine(output, "merges.txt"))
        {
            ByteLevel = true,
            PreTokenizer = RobertaPreTokenizer.Instance,
        });
        var texts = Sentences.Select(s => s.Text).Concat(["Ünïcödé — 日本語 🙂\ttabs\n\n  and   spaces ", "x", ""]);
        foreach (var text in texts)
        {
            var ids = tokenizer.EncodeWithoutSpecialTokens(text).ToArray();
            CollectionAssert.AreEqual(theirs.EncodeToIds(text).ToArray(), ids, text);
            Assert.AreEqual(text, theirs.Decode(ids), "byte-level BPE decodes to the exact text");
        }

        CollectionAssert.AreEqual(new[] { 399 }, tokenizer.EncodeWithoutSpecialTokens("<|endoftext|>").ToArray());
    }

    [TestMethod]
    public void FrequentWordsBecomeSingleTokens()
    {
        using var corpus = new TrainingCorpus();
        VocabularyTrainer.Train(corpus.Files, corpus.Output("wordpiece"), WordPiece(300));
        VocabularyTrainer.Train(corpus.Files, corpus.Output("bpe"), Bpe(400));
        var wordPiece = TransformerTokenizer.FromFolder(corpus.Output("wordpiece"));
        var bpe = TransformerTokenizer.FromFolder(corpus.Output("bpe"));

        CollectionAssert.AreEqual(new[] { "the", "tokenizer", "and", "the", "vocabulary" },
            wordPiece.ConvertIdsToTokens(wordPiece.EncodeWithoutSpecialTokens("The tokenizer and the vocabulary")).ToArray());
        CollectionAssert.AreEqual(new[] { "The", "Ġtokenizer", "Ġand", "Ġthe", "Ġvocabulary" },
            bpe.ConvertIdsToTokens(bpe.EncodeWithoutSpecialTokens("The tokenizer and the vocabulary")).ToArray());
    }

    [TestMethod]
    public void ASmallCorpusStopsBelowTheRequestedSize()
    {
        using var corpus = new TrainingCorpus();
        var wordPiece = VocabularyTrainer.Train(corpus.Files, corpus.Output("wordpiece"), WordPiece(100_000));
        var bpe = VocabularyTrainer.Train(corpus.Files, corpus.Output("bpe"), Bpe(100_000));

        Assert.IsLessThan(100_000, wordPiece.VocabularySize);
        Assert.HasCount(wordPiece.VocabularySize, File.ReadAllLines(Path.Combine(corpus.Output("wordpiece"), "vocab.txt")));
        Assert.AreEqual(wordPiece.VocabularySize, TransformerTokenizer.FromFolder(corpus.Output("wordpiece")).VocabularySize);

        Assert.IsLessThan(100_000, bpe.VocabularySize);
        var tokenizer = TransformerTokenizer.FromFolder(corpus.Output("bpe"));
        Assert.AreEqual(bpe.VocabularySize, tokenizer.VocabularySize);
        Assert.AreEqual(bpe.VocabularySize - 1, tokenizer.EosTokenId, "<|endoftext|> stays last");
    }

    [TestMethod]
    public void TheSameInputGivesByteIdenticalFiles()
    {
        using var corpus = new TrainingCorpus();
        foreach (var options in new[] { WordPiece(250), Bpe(350) })
        {
            var first = VocabularyTrainer.Train(corpus.Files, corpus.Output($"{options.Kind}-1"), options);
            var second = VocabularyTrainer.Train(corpus.Files, corpus.Output($"{options.Kind}-2"), options);
            CollectionAssert.AreEqual(first.Files.ToArray(), second.Files.ToArray());
            foreach (var name in first.Files)
            {
                CollectionAssert.AreEqual(File.ReadAllBytes(Path.Combine(first.OutputFolder, name)), File.ReadAllBytes(Path.Combine(second.OutputFolder, name)), $"{options.Kind} {name}");
            }
        }
    }

    [TestMethod]
    [DataRow(true)]
    [DataRow(false)]
    public void WordCountsDoNotDependOnTheBlockSize(bool wordPiece)
    {
        using var corpus = new TrainingCorpus();
        // Long whitespace runs, blank lines and a word longer than a block test where blocks may be cut (a block
        // without a safe cut grows).
        var extra = corpus.Write("extra.txt", "end.\n\n\n   spaced    out\t\tline\nx\ny " + new string('z', 300) + "  tail\n \n");
        var files = corpus.Files.Append(extra).ToList();
        WordSplitter Splitter() => wordPiece ? WordSplitter.WordPiece(lowerCase: true) : WordSplitter.ByteLevel();

        var whole = WordCounter.Count(files, Splitter(), null, CancellationToken.None, blockChars: 1 << 20);
        var blocks = WordCounter.Count(files, Splitter(), null, CancellationToken.None, blockChars: 97);

        Assert.AreEqual(whole.Total, blocks.Total);
        CollectionAssert.AreEquivalent(whole.Counts.ToArray(), blocks.Counts.ToArray());
        if (!wordPiece)
        {
            Assert.IsTrue(whole.Counts.ContainsKey("\n\n"), "GPT-2's regex keeps a blank line's newlines together before a space-led word");
        }
    }

    [TestMethod]
    public void SpecialTokensWrittenInTheTextAreNotLearned()
    {
        using var corpus = new TrainingCorpus();
        var paragraphs = Enumerable.Range(0, 20).Select(i => TrainingCorpus.Paragraphs(i, 1)).ToList();
        var gpt = corpus.Write("documents.txt", string.Join("<|endoftext|>", paragraphs));
        var bert = corpus.Write("masked.txt", string.Join(" [MASK] [SEP] ", paragraphs));
        VocabularyTrainer.Train([gpt], corpus.Output("bpe"), Bpe(1000));
        VocabularyTrainer.Train([bert], corpus.Output("wordpiece"), WordPiece(1000));

        using var vocab = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(corpus.Output("bpe"), "vocab.json")));
        var learned = vocab.RootElement.EnumerateObject().Select(e => e.Name).Where(t => t != "<|endoftext|>").ToList();
        Assert.IsEmpty(learned.Where(t => t.Contains("endof", StringComparison.Ordinal) || t.Contains("|>", StringComparison.Ordinal)));
        Assert.IsNotEmpty(learned.Where(t => t.Contains("tokenizer", StringComparison.Ordinal)), "the documents themselves are learned");
        var wordPieceTokens = File.ReadAllLines(Path.Combine(corpus.Output("wordpiece"), "vocab.txt"));
        Assert.DoesNotContain("mask", wordPieceTokens);
        Assert.DoesNotContain("sep", wordPieceTokens);
        CollectionAssert.AreEqual(new[] { 4, 3 }, TransformerTokenizer.FromFolder(corpus.Output("wordpiece")).EncodeWithoutSpecialTokens("[MASK] [SEP]").ToArray());
    }

    [TestMethod]
    public void TrainingIntoAnExistingFolderReplacesTheOtherKindsFiles()
    {
        using var corpus = new TrainingCorpus();
        var output = corpus.Output("tokenizer");
        VocabularyTrainer.Train(corpus.Files, output, WordPiece(200));
        File.WriteAllText(Path.Combine(output, "tokenizer.json"), "{}");
        File.WriteAllText(Path.Combine(output, "notes.md"), "mine");

        VocabularyTrainer.Train(corpus.Files, output, Bpe(300));

        Assert.IsFalse(File.Exists(Path.Combine(output, "vocab.txt")));
        Assert.IsFalse(File.Exists(Path.Combine(output, "tokenizer.json")), "a stale tokenizer.json would win in HuggingFace");
        Assert.AreEqual("mine", File.ReadAllText(Path.Combine(output, "notes.md")));
        Assert.AreEqual(TokenizerFamily.Gpt2, TransformerTokenizer.FromFolder(output).Family);
        Assert.IsEmpty(Directory.GetDirectories(corpus.Folder, ".*partial*"));
    }

    [TestMethod]
    public void TooSmallASizeSaysTheMinimum()
    {
        using var corpus = new TrainingCorpus();
        var error = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => VocabularyTrainer.Train(corpus.Files, corpus.Output("small"), WordPiece(20)));
        StringAssert.Contains(error.Message, "needs at least ");
        var minimum = int.Parse(error.Message.Split("needs at least ")[1].Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        Assert.IsFalse(Directory.Exists(corpus.Output("small")), "nothing is written on failure");

        // The minimum is exactly the special tokens, the characters and their ## forms: it trains, with no merge.
        var summary = VocabularyTrainer.Train(corpus.Files, corpus.Output("minimum"), WordPiece(minimum));
        Assert.AreEqual((minimum, 0), (summary.VocabularySize, summary.MergeCount));
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => VocabularyTrainer.Train(corpus.Files, corpus.Output("small"), WordPiece(minimum - 1)));

        var bpe = Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => VocabularyTrainer.Train(corpus.Files, corpus.Output("small"), Bpe(256)));
        StringAssert.Contains(bpe.Message, "at least 257");
    }

    [TestMethod]
    public void InputErrorsNameTheProblem()
    {
        using var corpus = new TrainingCorpus();
        var output = corpus.Output("out");

        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => VocabularyTrainer.Train([], output, WordPiece(100))).Message, "No input files");
        var missing = Path.Combine(corpus.Folder, "missing.txt");
        StringAssert.Contains(Assert.ThrowsExactly<FileNotFoundException>(() => VocabularyTrainer.Train([corpus.Files[0], missing], output, WordPiece(100))).Message, missing);
        StringAssert.Contains(Assert.ThrowsExactly<ArgumentException>(() => VocabularyTrainer.Train([corpus.Folder], output, WordPiece(100))).Message, "is a folder");

        var blank = corpus.Write("blank.txt", " \n\t\n  \n");
        var empty = corpus.Write("empty.txt", "");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => VocabularyTrainer.Train([blank, empty], output, WordPiece(100))).Message, "no words");
        // Whitespace is text to byte-level BPE (GPT-2 has tokens for runs of spaces), so only an empty input has no words.
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => VocabularyTrainer.Train([empty], output, Bpe(300))).Message, "no words");

        var rare = corpus.Write("rare.txt", "abc xyz");
        StringAssert.Contains(Assert.ThrowsExactly<InvalidDataException>(() => VocabularyTrainer.Train([rare], output, WordPiece(100))).Message, "No character occurs 2 times");

        var file = corpus.Write("output-is-a-file", "x");
        StringAssert.Contains(Assert.ThrowsExactly<IOException>(() => VocabularyTrainer.Train(corpus.Files, file, WordPiece(200))).Message, "is a file");

        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => VocabularyTrainer.Train(corpus.Files, output, WordPiece(200) with { MinimumFrequency = 0 }));
        Assert.ThrowsExactly<OperationCanceledException>(() => VocabularyTrainer.Train(corpus.Files, output, WordPiece(200), cancellationToken: new CancellationToken(canceled: true)));
        Assert.IsFalse(Directory.Exists(output), "no failure leaves an output folder");
        Assert.IsEmpty(Directory.GetDirectories(corpus.Folder, ".*partial*"));
    }

    // WordPiece's decoding: a "##" piece continues the previous word, anything else starts a new one.
    private static string JoinWordPieces(IReadOnlyList<string> tokens)
    {
        var text = new StringBuilder();
        foreach (var token in tokens)
        {
            if (token.StartsWith("##", StringComparison.Ordinal))
            {
                text.Append(token.AsSpan(2));
            }
            else
            {
                text.Append(text.Length == 0 ? "" : " ").Append(token);
            }
        }

        return text.ToString();
    }
}
