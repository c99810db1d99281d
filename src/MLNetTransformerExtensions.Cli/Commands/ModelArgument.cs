using MLNetTransformerExtensions.Builtin;
using MLNetTransformerExtensions.Hub;
using MLNetTransformerExtensions.Sources;
using Spectre.Console;

namespace MLNetTransformerExtensions.Cli.Commands;

/// <summary>Turns a <c>--model</c> value (a local folder, a built-in model name, or a HuggingFace hub id) into a local model folder.</summary>
internal static class ModelArgument
{
    /// <summary>
    /// Resolves the model; hub downloads show a progress bar per file on stderr, so stdout stays clean for results.
    /// </summary>
    public static string Resolve(string value)
    {
        if (Directory.Exists(value))
        {
            return Path.GetFullPath(value);
        }

        try
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            string folder = string.Empty;
            console.Progress().AutoClear(true).Start(context =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                var progress = new Progress<HubDownloadProgress>(p =>
                {
                    if (p.FromCache)
                    {
                        return;
                    }

                    if (!tasks.TryGetValue(p.FileName, out var task))
                    {
                        task = tasks[p.FileName] = context.AddTask(Markup.Escape(p.FileName), maxValue: Math.Max(1, p.TotalBytes ?? 1));
                    }

                    task.Value = p.IsCompleted ? task.MaxValue : p.BytesTransferred;
                });
                folder = ModelLocator.Resolve(value, progress: progress);
            });
            return folder;
        }
        catch (DirectoryNotFoundException e)
        {
            throw new CliException(e.Message);
        }
        catch (HubException e)
        {
            throw new CliException(e.Message);
        }
        catch (BuiltinModelException e)
        {
            throw new CliException(e.Message);
        }
    }
}
