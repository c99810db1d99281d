using System.Diagnostics;
using MLNetTransformerExtensions.Tests.Training.Pretraining;
using MLNetTransformerExtensions.Training.Pretraining;

namespace MLNetTransformerExtensions.Tests.Cli;

/// <summary>
/// A process killed (SIGKILL) while it overwrites a model leaves, at the model's path, the previous model or the new
/// one, each whole: the kill is sent as soon as the process's save has begun (its temporary file or folder appears),
/// so it lands somewhere in the write, the flush or the rename, and what is asserted holds wherever it lands. The
/// next run to the same path succeeds, whatever temporary files the killed one left.
/// </summary>
[TestClass]
public sealed class KillDuringSaveTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(20);

    [TestMethod]
    [TestCategory("Slow")]
    public void TrainKilledWhileOverwritingItsOutputLeavesAModelThatLoadsAndScores()
    {
        var work = TestPaths.NewTempDirectory();
        try
        {
            var (texts, labels) = Training.SyntheticReviews.Binary(24, seed: 3);
            File.WriteAllLines(Path.Combine(work, "train.tsv"), ["Label\tText", .. texts.Select((t, i) => $"{(labels[i] == 1 ? "pos" : "neg")}\t{t}")]);
            File.WriteAllLines(Path.Combine(work, "in.tsv"), ["Text", "a wonderful film", "a dull film"]);
            var train = $"train --data train.tsv --model \"{TestPaths.Fixtures("hf-tiny", "bert")}\" --epochs 1 --batch-size 8 --max-length 24 --no-baseline --output model.zip";
            var (exit, stdout, stderr) = CliRunner.Run(train, work);
            Assert.AreEqual(0, exit, stderr + stdout);

            for (var round = 0; round < 2; round++)
            {
                // ModelZip.Save writes model.zip.<pid>.tmp beside the model, then renames it over model.zip.
                KillWhenSaving(train, work, "model.zip.*.tmp", occurrence: 1);
                Assert.IsTrue(File.Exists(Path.Combine(work, "model.zip")), "the previous model is never removed before the new one replaces it");
                (exit, _, stderr) = CliRunner.Run("predict --model model.zip --input in.tsv --output out.tsv", work);
                Assert.AreEqual(0, exit, $"round {round}: the model left by the killed run does not score: {stderr}");
                Assert.HasCount(3, File.ReadAllLines(Path.Combine(work, "out.tsv")));
            }

            (exit, stdout, stderr) = CliRunner.Run(train, work);
            Assert.AreEqual(0, exit, "a later save to the same path, beside the killed runs' temporary files: " + stderr + stdout);
            (exit, _, stderr) = CliRunner.Run("predict --model model.zip --input in.tsv --output out.tsv", work);
            Assert.AreEqual(0, exit, stderr);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }

    [TestMethod]
    [TestCategory("Slow")]
    public void PretrainKilledWhileOverwritingACheckpointResumesFromAWholeOne()
    {
        using var workspace = new PretrainingWorkspace();
        var output = workspace.Output("model");
        Directory.CreateDirectory(output);
        var pretrain = $"pretrain --input \"{workspace.Files[0]}\" \"{workspace.Files[1]}\" --preset tiny --vocab-size 300 --steps 12 --batch-size 4 --max-length 32 --checkpoint-every 1 --output \"{output}\"";

        // Every step checkpoints into a hidden partial folder, then renames it over the last checkpoint; the third
        // partial appears once two checkpoints are in place, so the kill lands while one is being overwritten.
        KillWhenSaving(pretrain, output, ".checkpoint.partial-*", occurrence: 3);
        Assert.IsNotNull(PretrainingCheckpoint.Find(output), "a checkpoint (the last or the one before) is always in place");

        var (exit, stdout, stderr) = CliRunner.Run(pretrain + " --resume");
        Assert.AreEqual(0, exit, "resuming from what the killed run left: " + stderr + stdout);
        Assert.IsTrue(File.Exists(Path.Combine(output, "model.safetensors")), string.Join(", ", Directory.EnumerateFileSystemEntries(output)));
        Assert.IsFalse(Directory.EnumerateDirectories(output, ".checkpoint.partial-*").Any(), "the resumed run removes the killed run's partial checkpoint");
    }

    /// <summary>
    /// Runs the CLI and kills it (SIGKILL, as Process.Kill does on Linux) when the <paramref name="occurrence"/>-th
    /// file or folder matching <paramref name="pattern"/> appears in <paramref name="folder"/>; a run that ends first is
    /// left to end.
    /// </summary>
    private static void KillWhenSaving(string arguments, string folder, string pattern, int occurrence)
    {
        using var saving = new ManualResetEventSlim();
        var seen = 0;
        using var watcher = new FileSystemWatcher(folder, pattern) { NotifyFilter = NotifyFilters.FileName | NotifyFilters.DirectoryName };
        watcher.Created += (_, _) =>
        {
            if (Interlocked.Increment(ref seen) >= occurrence)
            {
                saving.Set();
            }
        };
        watcher.EnableRaisingEvents = true;

        var dll = Path.Combine(AppContext.BaseDirectory, "mlnet-transformers.dll");
        using var process = Process.Start(new ProcessStartInfo("dotnet", $"\"{dll}\" {arguments}")
        {
            WorkingDirectory = folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        })!;
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
        using var exited = new ManualResetEventSlim();
        process.EnableRaisingEvents = true;
        process.Exited += (_, _) => exited.Set();
        if (process.HasExited)
        {
            exited.Set();
        }

        if (WaitHandle.WaitAny([saving.WaitHandle, exited.WaitHandle], Timeout) == WaitHandle.WaitTimeout)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"'{arguments}' neither saved nor ended within {Timeout}.");
        }

        if (saving.IsSet)
        {
            process.Kill(entireProcessTree: true);
        }

        process.WaitForExit();
    }
}
