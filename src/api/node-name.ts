// The request schema of a file or folder name, shared by every route that takes one.
import * as tree from '../services/tree.service';
import { z } from './openapi';

export const nodeName = z
  .string()
  .min(1)
  .max(255)
  .superRefine((name, check) => {
    // The message says which rule the name breaks (which character class, the byte limit, …).
    const problem = tree.nameProblem(name);
    if (problem) check.addIssue({ code: 'custom', message: problem });
  });
