using System.Text;
using Microsoft.ML;
using MLNetTransformerExtensions.Cli.Commands;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>
/// Data files the CLI reads (train, evaluate, predict) that are empty, header-only, not valid UTF-8, hold NUL bytes or a
/// 1 MB line, or labels unseen in training: each is read as text or refused with the file, the line and what to do.
/// </summary>
[TestClass]
public sealed class HostileInputTests
{
    private string folder = string.Empty;

    [TestInitialize]
    public void CreateFolder() => folder = TestPaths.NewTempDirectory();

    [TestCleanup]
    public void DeleteFolder() => Directory.Delete(folder, recursive: true);

    [TestMethod]
    public void AnEmptyFileIsRefusedNamingTheFileAndLine()
    {
        var error = Assert.ThrowsExactly<CliException>(() => TabularData.Load(new MLContext(seed: 1), Write("empty.tsv", [])));
        StringAssert.Contains(error.Message, "empty.tsv:1: the file is empty or has no header row; the first line must name the columns.");
    }

    [TestMethod]
    public void AHeaderOnlyTrainingFileIsRefusedForHavingNoRows()
    {
        var ml = new MLContext(seed: 1);
        var data = TabularData.LoadLabelled(ml, Write("header.tsv", Encoding.UTF8.GetBytes("Label\tText\n")), "Text", "Label", null);
        var labels = data.Read(ml, "Label");

        Assert.IsEmpty(labels);
        var error = Assert.ThrowsExactly<CliException>(() => TrainCommand.CheckTrainingLabels(data, "Label", labels));
        StringAssert.Contains(error.Message, "header.tsv: the label column 'Label' has no rows; a classifier needs at least two classes.");
    }

    [TestMethod]
    public void InvalidUtf8NulBytesAndAOneMegabyteLineAreReadAsText()
    {
        var ml = new MLContext(seed: 1);
        var longLine = new string('a', 1 << 20);
        var bytes = new List<byte>();
        bytes.AddRange(Encoding.UTF8.GetBytes("Label\tText\n"));
        bytes.AddRange(Encoding.UTF8.GetBytes("neg\tbad "));
        bytes.AddRange([0xFF, 0xFE, 0xC3]); // not UTF-8: read as U+FFFD, as .NET's decoder does
        bytes.AddRange(Encoding.UTF8.GetBytes(" end\npos\tnul\0inside\nneg\t" + longLine + "\n"));
        var data = TabularData.LoadLabelled(ml, Write("odd.tsv", [.. bytes]), "Text", "Label", null);

        var texts = data.Read(ml, "Text");

        Assert.HasCount(3, texts);
        StringAssert.StartsWith(texts[0], "bad \uFFFD");
        StringAssert.EndsWith(texts[0], " end");
        Assert.AreEqual("nul\0inside", texts[1]);
        Assert.AreEqual(longLine, texts[2]);
        CollectionAssert.AreEqual(new[] { "neg", "pos", "neg" }, data.Read(ml, "Label"));
    }

    [TestMethod]
    public void ALabelUnseenInTrainingIsRefusedNamingTheFileRowAndLine()
    {
        var ml = new MLContext(seed: 1);
        var data = TabularData.LoadLabelled(ml, Write("test.tsv", Encoding.UTF8.GetBytes("Label\tText\nneg\tx\nsurprised\ty\n")), "Text", "Label", null);

        var error = Assert.ThrowsExactly<CliException>(() => ModelZip.CheckLabels(ml, data, "Label", ["neg", "pos"]));
        StringAssert.Contains(error.Message, "test.tsv row 2 (line 3): the label 'surprised' was not among the training labels (neg, pos).");
    }

    private string Write(string name, byte[] bytes)
    {
        var path = Path.Combine(folder, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}
