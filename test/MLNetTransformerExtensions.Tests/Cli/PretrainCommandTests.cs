using System.Text.Json;
using MLNetTransformerExtensions.Tests.Training.Pretraining;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>The CLI's <c>pretrain</c> command: a run with its JSON summary, resuming, and errors in the CLI's terms.</summary>
[TestClass]
public sealed class PretrainCommandTests
{
    private static string Arguments(PretrainingWorkspace workspace, string output, string extra, int maxLength = 32) =>
        $"pretrain --input \"{workspace.Files[0]}\" \"{workspace.Files[1]}\" --preset tiny --vocab-size 300 --steps 4 --batch-size 4 --max-length {maxLength} --output \"{output}\" {extra}";

    [TestMethod]
    [TestCategory("Slow")]
    public void PretrainWritesAModelAndReportsLossAndThroughput()
    {
        using var workspace = new PretrainingWorkspace();
        var output = workspace.Output("gpt");
        var (exit, stdout, stderr) = CliRunner.Run(Arguments(workspace, output, "--kind decoder --json"));

        Assert.AreEqual(0, exit, stderr);
        using var summary = JsonDocument.Parse(stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        var root = summary.RootElement;
        Assert.AreEqual("gpt2", root.GetProperty("model_type").GetString());
        Assert.AreEqual(4, root.GetProperty("steps").GetInt32());
        Assert.AreEqual(300, root.GetProperty("vocab_size").GetInt32());
        Assert.IsGreaterThan(0.0, root.GetProperty("tokens_per_second").GetDouble());
        Assert.IsGreaterThan(100_000L, root.GetProperty("parameters").GetInt64());
        var loss = root.GetProperty("validation_loss").GetDouble();
        Assert.AreEqual(Math.Exp(loss), root.GetProperty("validation_perplexity").GetDouble(), 1e-6 * Math.Exp(loss));
        StringAssert.Contains(stdout, "validation loss");
        StringAssert.Contains(stdout, "tokens/s");
        Assert.IsTrue(File.Exists(Path.Combine(output, "model.safetensors")));

        // Once finished, the same command is refused; with --resume it re-exports the finished run.
        var (again, _, againError) = CliRunner.Run(Arguments(workspace, output, "--kind decoder"));
        Assert.AreEqual(1, again);
        StringAssert.Contains(againError, "already holds a pretraining checkpoint (step 4 of 4). Resume it (--resume)");
        var (resumed, resumedOut, resumedError) = CliRunner.Run(Arguments(workspace, output, "--kind decoder --resume --json"));
        Assert.AreEqual(0, resumed, resumedError);
        using var resumedSummary = JsonDocument.Parse(resumedOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1]);
        Assert.AreEqual(4, resumedSummary.RootElement.GetProperty("resumed_from_step").GetInt32());
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void ErrorsNameTheOptionAndTheFile()
    {
        using var workspace = new PretrainingWorkspace();
        var output = workspace.Output("bert");

        var (both, _, bothError) = CliRunner.Run(Arguments(workspace, output, "--epochs 2"));
        Assert.AreEqual(1, both);
        StringAssert.Contains(bothError, "error: Give --steps or --epochs, not both");
        Assert.DoesNotContain("Parameter", bothError);

        var (tooLong, _, tooLongError) = CliRunner.Run(Arguments(workspace, output, string.Empty, maxLength: 512));
        Assert.AreEqual(1, tooLong);
        StringAssert.Contains(tooLongError, "error: --max-length 512 is longer than the 128 positions of the tiny preset");

        var (exit, _, stderr) = CliRunner.Run(Arguments(workspace, output, string.Empty));
        Assert.AreEqual(0, exit, stderr);
        var weights = Path.Combine(output, "checkpoint", "model.safetensors");
        var bytes = File.ReadAllBytes(weights);
        bytes[^1] ^= 1;
        File.WriteAllBytes(weights, bytes);
        var (corrupt, _, corruptError) = CliRunner.Run(Arguments(workspace, output, "--resume"));
        Assert.AreEqual(1, corrupt);
        StringAssert.Contains(corruptError, $"error: Checkpoint '{weights}': the file is corrupt");

        bytes[^1] ^= 1;
        File.WriteAllBytes(weights, bytes);
        var (other, _, otherError) = CliRunner.Run(Arguments(workspace, output, "--resume --seed 2"));
        Assert.AreEqual(1, other);
        StringAssert.Contains(otherError, "was made with other options: --seed is 2 now but was 1");
    }
}
