using System.Text.Json;
using MLNetTransformerExtensions.Tests.Tokenization.Vocabulary;
using MLNetTransformerExtensions.Tokenization;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>The CLI's <c>vocab</c> command: a run that writes a loadable tokenizer and reports throughput, and an error in the CLI's terms.</summary>
[TestClass]
public sealed class VocabCommandTests
{
    [TestMethod]
    public void VocabTrainsALoadableTokenizerAndReportsThroughput()
    {
        using var corpus = new TrainingCorpus();
        var output = corpus.Output("bpe");
        var (exit, stdout, stderr) = CliRunner.Run($"vocab --input \"{corpus.Files[0]}\" \"{corpus.Files[1]}\" --kind bpe --size 300 --output \"{output}\" --json");

        Assert.AreEqual(0, exit, stderr);
        using var summary = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        Assert.AreEqual(300, summary.RootElement.GetProperty("vocab_size").GetInt32());
        Assert.AreEqual("bpe", summary.RootElement.GetProperty("kind").GetString());
        Assert.AreEqual(corpus.Files.Sum(f => new FileInfo(f).Length), summary.RootElement.GetProperty("input_bytes").GetInt64());
        Assert.IsGreaterThan(0.0, summary.RootElement.GetProperty("mb_per_second").GetDouble());
        StringAssert.Contains(stdout, "MB/s");
        Assert.AreEqual(300, TransformerTokenizer.FromFolder(output).VocabularySize);
    }

    [TestMethod]
    public void VocabNamesTheOptionAndTheMinimum()
    {
        using var corpus = new TrainingCorpus();
        var output = corpus.Output("bpe");
        var (exit, _, stderr) = CliRunner.Run($"vocab --input \"{corpus.Files[0]}\" --kind bpe --size 100 --output \"{output}\"");

        Assert.AreEqual(1, exit);
        StringAssert.Contains(stderr, "error: --size 100 is too small");
        StringAssert.Contains(stderr, "at least 257");
        Assert.DoesNotContain("Parameter", stderr);
        Assert.IsFalse(Directory.Exists(output));
    }
}
